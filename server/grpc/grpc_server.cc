#include "server/grpc/grpc_server.h"

#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include "grpc/health/v1/health.pb.h"

#include <fstream>
#include <mutex>
#include <sstream>

#include "server/common/log.h"

namespace epmdx::grpcapi {
namespace {

std::optional<std::string> readFile(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) {
    return "cannot read " + path;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return std::nullopt;
}

// gRPC core writes its own lines to stderr in its own format (a taken address prints an
// "E1202 ... chttp2_server.cc:1045] UNKNOWN:No address added ..." dump before epmdx's clear
// line). Route them through the daemon's logger at debug level instead: epmdx reports
// what matters itself, and with -d the details are there, in the daemon's format.
void logFromGrpcCore(gpr_log_func_args* args) {
  log::debug("grpc core", {{"severity", gpr_log_severity_string(args->severity)},
                           {"message", args->message != nullptr ? args->message : ""},
                           {"at", std::string(args->file != nullptr ? args->file : "?") + ":" +
                                      std::to_string(args->line)}});
}

void routeGrpcCoreLog() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without -d nothing below ERROR is even formatted; with it, INFO too (not DEBUG: the
    // core's tracing is for gRPC's developers).
    gpr_set_log_verbosity(log::enabled(log::Level::Debug) ? GPR_LOG_SEVERITY_INFO
                                                          : GPR_LOG_SEVERITY_ERROR);
    gpr_set_log_function(logFromGrpcCore);
  });
}

}  // namespace

GrpcServer::GrpcServer(api::Service& api, GrpcOptions options)
    : options_(std::move(options)), service_(std::make_unique<RegistryService>(api)) {
  if (api.fleet() != nullptr) {
    fleet_ = std::make_unique<FleetService>(api);
  }
}

GrpcServer::~GrpcServer() {
  stop(std::chrono::milliseconds(0));
}

std::optional<std::string> GrpcServer::start() {
  routeGrpcCoreLog();
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!options_.tls_cert_file.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    if (auto e = readFile(options_.tls_key_file, pair.private_key)) {
      return e;
    }
    if (auto e = readFile(options_.tls_cert_file, pair.cert_chain)) {
      return e;
    }
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    if (!options_.tls_client_ca_file.empty()) {
      if (auto e = readFile(options_.tls_client_ca_file, ssl.pem_root_certs)) {
        return e;
      }
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  // Reflection describes what the generated descriptor pool holds: link the health
  // service's descriptors in, so grpcurl and grpcui can call grpc.health.v1.Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  // Our own callback health service (see health_service.h), not gRPC's default one.
  grpc::EnableDefaultHealthCheckService(false);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // A control plane is never shared: with SO_REUSEPORT a second daemon would bind the same
  // port and the kernel would split clients between two registries.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(options_.listen, creds, &port);
  builder.RegisterService(service_.get());
  builder.RegisterService(&health_);
  if (fleet_) {
    builder.RegisterService(fleet_.get());  // A relay's: its sources.
  }
  // Keep idle watch streams alive through proxies and notice dead peers.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A fleet relay pings its sources every second or so to notice a silent one: allow it
  // (gRPC's default answers pings more often than every 5 minutes with GOAWAY).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return "cannot listen for gRPC on " + options_.listen;
  }
  port_ = static_cast<uint16_t>(port);
  health_.setServing(true);
  return std::nullopt;
}

void GrpcServer::beginDrain() {
  if (!server_) {
    return;
  }
  health_.setServing(false);
  service_->beginShutdown();
}

void GrpcServer::stop(std::chrono::milliseconds grace) {
  if (!server_ || stopped_) {
    return;
  }
  stopped_ = true;
  const auto deadline = std::chrono::system_clock::now() + grace;  // One budget for both.
  service_->beginShutdown();
  health_.shutdown();
  service_->watches().waitEmpty(grace);
  server_->Shutdown(deadline);
  server_->Wait();
}

}  // namespace epmdx::grpcapi
