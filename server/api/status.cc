#include "server/api/status.h"

namespace epmdx::api {

std::string_view toString(Code code) {
  switch (code) {
    case Code::Ok:
      return "OK";
    case Code::Cancelled:
      return "CANCELLED";
    case Code::Unknown:
      return "UNKNOWN";
    case Code::InvalidArgument:
      return "INVALID_ARGUMENT";
    case Code::DeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case Code::NotFound:
      return "NOT_FOUND";
    case Code::AlreadyExists:
      return "ALREADY_EXISTS";
    case Code::Aborted:
      return "ABORTED";
    case Code::Unimplemented:
      return "UNIMPLEMENTED";
    case Code::DataLoss:
      return "DATA_LOSS";
    case Code::PermissionDenied:
      return "PERMISSION_DENIED";
    case Code::ResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case Code::FailedPrecondition:
      return "FAILED_PRECONDITION";
    case Code::OutOfRange:
      return "OUT_OF_RANGE";
    case Code::Internal:
      return "INTERNAL";
    case Code::Unavailable:
      return "UNAVAILABLE";
    case Code::Unauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

int httpStatus(Code code) {
  switch (code) {
    case Code::Ok:
      return 200;
    case Code::Cancelled:
      return 499;
    case Code::Unknown:
    case Code::DataLoss:
      return 500;
    case Code::InvalidArgument:
      return 400;
    case Code::DeadlineExceeded:
      return 504;
    case Code::AlreadyExists:
    case Code::Aborted:
      return 409;
    case Code::Unimplemented:
      return 501;
    case Code::NotFound:
      return 404;
    case Code::PermissionDenied:
      return 403;
    case Code::ResourceExhausted:
      return 503;  // Too many watch streams: try again later.
    case Code::FailedPrecondition:
      return 409;
    case Code::OutOfRange:
      return 410;  // Kubernetes' "Gone": list again.
    case Code::Internal:
      return 500;
    case Code::Unavailable:
      return 503;
    case Code::Unauthenticated:
      return 401;
  }
  return 500;
}

}  // namespace epmdx::api
