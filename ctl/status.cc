#include "ctl/status.h"

namespace epmdx::ctl {

std::string statusName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "STATUS_" + std::to_string(static_cast<int>(code));
  }
}

int exitFor(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return ExitOk;
    case grpc::StatusCode::NOT_FOUND:
      return ExitNotFound;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return ExitPrecondition;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return ExitNotAuthorized;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return ExitUnavailable;
    default:
      return ExitError;
  }
}

std::string describe(const grpc::Status& status, const std::string& hint) {
  std::string text = statusName(status.error_code());
  if (!status.error_message().empty()) {
    text += ": " + status.error_message();
  }
  if (!hint.empty()) {
    text += " (" + hint + ")";
  }
  return text;
}

}  // namespace epmdx::ctl
