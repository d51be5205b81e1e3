#include "ctl/status.h"

#include "server/api/status.h"

namespace epmdx::ctl {

std::string statusName(grpc::StatusCode code) {
  return std::string(api::toString(static_cast<api::Code>(code)));
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
