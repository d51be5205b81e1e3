#pragma once

// The outcome of a use case, independent of the protocol that carries it. The gRPC adapter
// maps a Code to grpc::StatusCode, the HTTP adapter to an HTTP status and an ErrorBody:
// both from this one table, so the two APIs always agree on what went wrong.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace epmdx::api {

/// gRPC's status codes, with gRPC's numbers (clients map a grpc::StatusCode by casting).
enum class Code : uint8_t {
  Ok = 0,
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
};

/// "NOT_FOUND", "OUT_OF_RANGE", ...: gRPC's canonical names ("UNKNOWN" for any other value).
std::string_view toString(Code code);

/// The HTTP status that stands for `code` in the REST API.
int httpStatus(Code code);

struct Error {
  Code code = Code::Internal;
  std::string message;
  // For OUT_OF_RANGE (list again): the oldest revision still kept and the current one.
  struct Window {
    uint64_t oldest = 0;
    uint64_t current = 0;
  };
  std::optional<Window> window;
};

}  // namespace epmdx::api
