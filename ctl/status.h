#pragma once

// epmdxctl's exit codes and how a gRPC status maps to them and to the words it prints.

#include <grpcpp/support/status.h>

#include <string>

namespace epmdx::ctl {

/// The exit codes scripts rely on; README.md lists them.
enum Exit : int {
  ExitOk = 0,
  ExitError = 1,
  ExitUsage = 2,
  ExitNotFound = 3,
  ExitPrecondition = 4,
  ExitNotAuthorized = 5,
  ExitUnavailable = 6,
  // A fleet-only request (`sources`, --source, --partial) sent to an epmdx daemon, which
  // answers Fleet.ListSources with UNIMPLEMENTED. Kept apart from 1 so that a script can
  // tell "wrong kind of server" from a failure.
  ExitNotRelay = 7,
};

/// "NOT_FOUND", "UNAUTHENTICATED", ...: the names gRPC documents, never bare numbers.
std::string statusName(grpc::StatusCode code);

int exitFor(grpc::StatusCode code);

/// "NOT_FOUND: no node named x", plus `hint` in parentheses when not empty.
std::string describe(const grpc::Status& status, const std::string& hint = "");

}  // namespace epmdx::ctl
