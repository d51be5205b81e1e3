#pragma once

// One gRPC channel to the daemon, the bearer token every call carries, and the one rule
// for a token the daemon no longer knows: read the token file again and retry.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>

#include "ctl/token_source.h"
#include "epmdx/v1/registry.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace epmdx::ctl {

struct ConnectOptions {
  std::string server = "127.0.0.1:4370";
  // The cluster (epmd port) the commands address: list and watch filter by it ("" = all),
  // get and evict look in it ("" = the default cluster).
  std::string cluster;
  // A fleet relay's source (Source.name) the commands address: list, watch, events and holds
  // filter by it ("" = every source), get, evict and lift look in it ("" = the one source
  // that has the name).
  std::string source;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  int timeout_s = 10;
};

class Connection {
 public:
  /// Null, with `error` set, when a TLS file cannot be read.
  static std::unique_ptr<Connection> open(const ConnectOptions& options, TokenSource tokens,
                                          std::string& error);

  /// A context carrying the current token; `deadline`: the --timeout (not for watches).
  std::unique_ptr<grpc::ClientContext> context(bool deadline) const;

  /// Runs a unary call `fn(ClientContext*) -> grpc::Status`. On UNAUTHENTICATED with a token
  /// from a file, reads the file once more and, if the token changed (the daemon restarted),
  /// calls again.
  template <typename Fn>
  grpc::Status call(Fn&& fn) {
    auto ctx = context(true);
    grpc::Status status = fn(ctx.get());
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && tokens_.reload()) {
      ctx = context(true);
      status = fn(ctx.get());
    }
    return status;
  }

  /// "STATUS: message (hint)", and for UNAUTHENTICATED where the token came from or why
  /// there was none.
  std::string explain(const grpc::Status& status, const std::string& hint = "") const;

  v1::Registry::Stub& registry() { return *registry_; }
  /// Served by a fleet relay only; a daemon answers UNIMPLEMENTED.
  v1::Fleet::Stub& fleet() { return *fleet_; }
  grpc::health::v1::Health::Stub& health() { return *health_; }
  TokenSource& tokens() { return tokens_; }
  const ConnectOptions& options() const { return options_; }

 private:
  Connection(const ConnectOptions& options, TokenSource tokens)
      : options_(options), tokens_(std::move(tokens)) {}

  ConnectOptions options_;
  TokenSource tokens_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Registry::Stub> registry_;
  std::unique_ptr<v1::Fleet::Stub> fleet_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace epmdx::ctl
