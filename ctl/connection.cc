#include "ctl/connection.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ctl/status.h"

namespace epmdx::ctl {
namespace {

bool readPem(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace

std::unique_ptr<Connection> Connection::open(const ConnectOptions& options, TokenSource tokens,
                                             std::string& error) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!readPem(options.tls_ca, ssl.pem_root_certs, error)) {
      return nullptr;
    }
    if (!options.tls_cert.empty() && (!readPem(options.tls_cert, ssl.pem_cert_chain, error) ||
                                      !readPem(options.tls_key, ssl.pem_private_key, error))) {
      return nullptr;
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  std::unique_ptr<Connection> c(new Connection(options, std::move(tokens)));
  c->channel_ = grpc::CreateChannel(options.server, creds);
  c->registry_ = v1::Registry::NewStub(c->channel_);
  c->fleet_ = v1::Fleet::NewStub(c->channel_);
  c->health_ = grpc::health::v1::Health::NewStub(c->channel_);
  return c;
}

std::unique_ptr<grpc::ClientContext> Connection::context(bool deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!tokens_.token().empty()) {
    ctx->AddMetadata("authorization", "Bearer " + tokens_.token());
  }
  if (deadline) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(options_.timeout_s));
  }
  return ctx;
}

std::string Connection::explain(const grpc::Status& status, const std::string& hint) const {
  std::string why = hint;
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED && why.empty()) {
    if (tokens_.token().empty()) {
      why = "no token sent: " + (tokens_.error().empty() ? "none given" : tokens_.error()) +
            "; pass --token-file=PATH or --token=TOKEN";
    } else if (tokens_.fromFile()) {
      why = "token read from " + tokens_.path();
    }
  }
  return describe(status, why);
}

}  // namespace epmdx::ctl
