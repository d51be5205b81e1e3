// epmdxctl: the command-line client of the epmdx admin API (gRPC), for people and scripts.
//
//   epmdxctl [global options] list [-o table|json|names]
//   epmdxctl [global options] get NAME [-o table|json]
//   epmdxctl [global options] watch [--after=REV] [--initial] [-o text|json]
//   epmdxctl [global options] evict NAME [--if-registration=ID] [--reason=TEXT]
//   epmdxctl [global options] health
//
// Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, 4 precondition failed,
// 5 not authorized (no/unknown token or missing scope), 6 daemon unavailable.

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "epmdx/v1/registry.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/api/auth.h"
#include "server/app/options.h"

namespace {

namespace v1 = epmdx::v1;

enum Exit {
  kOk = 0,
  kError = 1,
  kUsage = 2,
  kNotFound = 3,
  kPrecondition = 4,
  kAuth = 5,
  kUnavailable = 6
};

constexpr const char* kUsageText =
    R"(usage: epmdxctl [global options] COMMAND [options]

Commands:
  list [-o table|json|names]          every registered node
  get NAME [-o table|json]            one node
  watch [--after=REV] [--initial] [-o text|json]
                                      follow changes; resumes across reconnects
  evict NAME [--if-registration=ID] [--reason=TEXT]
                                      close the node's epmd connection: the name is free
  health                              SERVING / NOT_SERVING

Global options (and environment):
  --server=HOST:PORT    gRPC admin address (EPMDX_SERVER, default 127.0.0.1:4370)
  --token=TOKEN         bearer token (EPMDX_TOKEN)
  --token-file=PATH     file holding the token (EPMDX_TOKEN_FILE; default: the admin token
                        epmdx generates, $XDG_RUNTIME_DIR/epmdx/admin.token or
                        ~/.config/epmdx/admin.token)
  --tls-ca=PEM          use TLS, trusting this CA
  --tls-cert=PEM --tls-key=PEM
                        client certificate for mutual TLS
  --timeout=SECONDS     per call (default 10; watch: connection only)

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 precondition failed, 5 not authorized,
6 daemon unavailable.
)";

struct Global {
  std::string server = "127.0.0.1:4370";
  std::string token;
  std::string token_file;
  std::string tls_ca, tls_cert, tls_key;
  int timeout_s = 10;
};

const char* getenvFn(const char* n) {
  return std::getenv(n);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int exitFor(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::OK:
      return kOk;
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kPrecondition;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kAuth;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kUnavailable;
    default:
      return kError;
  }
}

int fail(const grpc::Status& st) {
  std::fprintf(stderr, "epmdxctl: %s (%d)\n", st.error_message().c_str(), st.error_code());
  return exitFor(st);
}

std::string toJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = false;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string age(const google::protobuf::Timestamp& ts) {
  const long secs = static_cast<long>(std::time(nullptr) - ts.seconds());
  if (secs < 120) {
    return std::to_string(std::max(0L, secs)) + "s";
  }
  if (secs < 7200) {
    return std::to_string(secs / 60) + "m";
  }
  if (secs < 172800) {
    return std::to_string(secs / 3600) + "h";
  }
  return std::to_string(secs / 86400) + "d";
}

std::string typeName(const v1::Node& n) {
  switch (n.node_type()) {
    case v1::NODE_TYPE_NORMAL:
      return "normal";
    case v1::NODE_TYPE_HIDDEN:
      return "hidden";
    default:
      return "type" + std::to_string(n.node_type_raw());
  }
}

void printTable(const std::vector<const v1::Node*>& nodes) {
  std::vector<std::vector<std::string>> rows{
      {"NAME", "PORT", "TYPE", "VERSIONS", "CREATION", "ID", "PEER", "AGE"}};
  for (const auto* n : nodes) {
    rows.push_back(
        {n->name(), std::to_string(n->port()), typeName(*n),
         std::to_string(n->lowest_version()) + "-" + std::to_string(n->highest_version()),
         std::to_string(n->creation()), std::to_string(n->registration_id()), n->peer_address(),
         age(n->registered_at())});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());  // Bytes: fine for the ASCII columns.
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(width[i] - r[i].size() + 2, ' ');
      }
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string reasonName(v1::UnregisterReason r) {
  std::string s = v1::UnregisterReason_Name(r);
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(c));
  }
  return s;
}

void printEventText(const v1::NodeEvent& e) {
  const auto& n = e.node();
  if (e.type() == v1::NodeEvent::REGISTERED) {
    std::printf("%lu registered %s port=%u id=%lu creation=%u peer=%s\n",
                static_cast<unsigned long>(e.revision()), n.name().c_str(), n.port(),
                static_cast<unsigned long>(n.registration_id()), n.creation(),
                n.peer_address().c_str());
  } else {
    std::string extra;
    if (!e.actor().empty()) {
      extra += " by=" + e.actor();
    }
    if (!e.detail().empty()) {
      extra += " detail=\"" + e.detail() + "\"";
    }
    std::printf("%lu unregistered %s reason=%s id=%lu%s\n",
                static_cast<unsigned long>(e.revision()), n.name().c_str(),
                reasonName(e.reason()).c_str(), static_cast<unsigned long>(n.registration_id()),
                extra.c_str());
  }
  std::fflush(stdout);
}

class Client {
 public:
  explicit Client(const Global& g) : g_(g) {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (!g.tls_ca.empty()) {
      grpc::SslCredentialsOptions o;
      o.pem_root_certs = readFile(g.tls_ca);
      if (!g.tls_cert.empty()) {
        o.pem_cert_chain = readFile(g.tls_cert);
        o.pem_private_key = readFile(g.tls_key);
      }
      creds = grpc::SslCredentials(o);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    channel_ = grpc::CreateChannel(g.server, creds);
    registry_ = v1::Registry::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> context(bool deadline = true) const {
    auto c = std::make_unique<grpc::ClientContext>();
    if (!g_.token.empty()) {
      c->AddMetadata("authorization", "Bearer " + g_.token);
    }
    if (deadline) {
      c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(g_.timeout_s));
    }
    return c;
  }

  const Global& g_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Registry::Stub> registry_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

int cmdList(Client& c, const std::string& output) {
  v1::ListNodesResponse resp;
  auto ctx = c.context();
  auto st = c.registry_->ListNodes(ctx.get(), {}, &resp);
  if (!st.ok()) {
    return fail(st);
  }
  if (output == "json") {
    std::printf("%s\n", toJson(resp).c_str());
  } else if (output == "names") {
    for (const auto& n : resp.nodes()) {
      std::printf("%s\n", n.name().c_str());
    }
  } else {
    std::vector<const v1::Node*> nodes;
    for (const auto& n : resp.nodes()) {
      nodes.push_back(&n);
    }
    printTable(nodes);
  }
  return kOk;
}

int cmdGet(Client& c, const std::string& name, const std::string& output) {
  v1::GetNodeRequest req;
  req.set_name(name);
  v1::Node node;
  auto ctx = c.context();
  auto st = c.registry_->GetNode(ctx.get(), req, &node);
  if (!st.ok()) {
    return fail(st);
  }
  if (output == "json") {
    std::printf("%s\n", toJson(node).c_str());
  } else {
    printTable({&node});
  }
  return kOk;
}

int cmdEvict(Client& c, const std::string& name, std::optional<uint64_t> id,
             const std::string& reason) {
  v1::EvictNodeRequest req;
  req.set_name(name);
  if (id) {
    req.set_registration_id(*id);
  }
  req.set_reason(reason);
  v1::EvictNodeResponse resp;
  auto ctx = c.context();
  auto st = c.registry_->EvictNode(ctx.get(), req, &resp);
  if (!st.ok()) {
    return fail(st);
  }
  std::printf("evicted %s (registration %lu) at revision %lu\n", resp.node().name().c_str(),
              static_cast<unsigned long>(resp.node().registration_id()),
              static_cast<unsigned long>(resp.revision()));
  return kOk;
}

int cmdHealth(Client& c) {
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  auto ctx = c.context();
  auto st = c.health_->Check(ctx.get(), req, &resp);
  if (!st.ok()) {
    return fail(st);
  }
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  std::printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
  return serving ? kOk : kUnavailable;
}

// Follows the registry, reconnecting with the last revision seen so that nothing is lost or
// repeated across reconnects; when the daemon no longer has that revision, lists again
// (a "resync" line, then the current nodes) and goes on.
int cmdWatch(Client& c, std::optional<uint64_t> after, bool initial, const std::string& output) {
  std::optional<uint64_t> resume = after;
  bool want_initial = initial && !after;
  bool progressed = false;  // Got at least one message: later revisions are ours, not the user's.
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    v1::WatchNodesRequest req;
    if (want_initial) {
      req.set_send_initial_state(true);
    } else if (resume) {
      req.set_after_revision(*resume);
    }
    auto ctx = c.context(false);
    auto stream = c.registry_->WatchNodes(ctx.get(), req);
    v1::WatchNodesResponse msg;
    while (stream->Read(&msg)) {
      backoff = std::chrono::milliseconds(100);
      for (const auto& n : msg.initial_nodes()) {
        if (output == "json") {
          std::printf("{\"initialNode\":%s}\n", toJson(n).c_str());
        } else {
          std::printf("%lu existing %s port=%u id=%lu creation=%u peer=%s\n",
                      static_cast<unsigned long>(msg.revision()), n.name().c_str(), n.port(),
                      static_cast<unsigned long>(n.registration_id()), n.creation(),
                      n.peer_address().c_str());
        }
      }
      for (const auto& e : msg.events()) {
        if (output == "json") {
          std::printf("%s\n", toJson(e).c_str());
        } else {
          printEventText(e);
        }
      }
      std::fflush(stdout);
      resume = msg.revision();
      want_initial = false;
      progressed = true;
    }
    const auto st = stream->Finish();
    if (st.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
      std::printf("resync: %s\n", st.error_message().c_str());
      std::fflush(stdout);
      want_initial = true;
      resume.reset();
      continue;
    }
    if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT && progressed) {
      // Our revision is ahead of the daemon's: it restarted with a new history.
      std::printf("resync: the daemon restarted (%s)\n", st.error_message().c_str());
      std::fflush(stdout);
      want_initial = true;
      resume.reset();
      continue;
    }
    if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        st.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
        st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
      return fail(st);
    }
    // Unavailable, shutting down, network: try again, resuming where we were.
    std::fprintf(stderr, "epmdxctl: watch interrupted (%s); reconnecting\n",
                 st.error_message().c_str());
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

bool parseU64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19) {
    return false;
  }
  out = std::stoull(s);
  return true;
}

int usage() {
  std::fputs(kUsageText, stderr);
  return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
  Global g;
  if (const char* s = std::getenv("EPMDX_SERVER")) {
    g.server = s;
  }
  if (const char* t = std::getenv("EPMDX_TOKEN")) {
    g.token = t;
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> rest;
  auto value = [](const std::string& a) { return a.substr(a.find('=') + 1); };
  size_t i = 0;
  for (; i < args.size() && args[i].rfind("--", 0) == 0; ++i) {
    const std::string& a = args[i];
    if (a == "--help") {
      std::fputs(kUsageText, stdout);
      return kOk;
    }
    if (a.find('=') == std::string::npos) {
      return usage();
    }
    if (a.rfind("--server=", 0) == 0) {
      g.server = value(a);
    } else if (a.rfind("--token=", 0) == 0) {
      g.token = value(a);
    } else if (a.rfind("--token-file=", 0) == 0) {
      g.token_file = value(a);
    } else if (a.rfind("--tls-ca=", 0) == 0) {
      g.tls_ca = value(a);
    } else if (a.rfind("--tls-cert=", 0) == 0) {
      g.tls_cert = value(a);
    } else if (a.rfind("--tls-key=", 0) == 0) {
      g.tls_key = value(a);
    } else if (a.rfind("--timeout=", 0) == 0) {
      g.timeout_s = std::max(1, std::atoi(value(a).c_str()));
    } else {
      return usage();
    }
  }
  if (i == args.size()) {
    return usage();
  }
  const std::string cmd = args[i++];
  if (g.token.empty()) {
    const std::string path =
        g.token_file.empty() ? epmdx::app::defaultTokenPath(getenvFn) : g.token_file;
    g.token = epmdx::api::readTokenFile(path);
  }
  std::string output;
  std::vector<std::string> positional;
  std::optional<uint64_t> after, id;
  bool initial = false;
  std::string reason;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-o" && i + 1 < args.size()) {
      output = args[++i];
    } else if (a.rfind("-o=", 0) == 0 || a.rfind("--output=", 0) == 0) {
      output = value(a);
    } else if (a == "--initial") {
      initial = true;
    } else if (a.rfind("--after=", 0) == 0) {
      uint64_t v = 0;
      if (!parseU64(value(a), v)) {
        return usage();
      }
      after = v;
    } else if (a.rfind("--if-registration=", 0) == 0) {
      uint64_t v = 0;
      if (!parseU64(value(a), v)) {
        return usage();
      }
      id = v;
    } else if (a.rfind("--reason=", 0) == 0) {
      reason = value(a);
    } else if (a.rfind("-", 0) == 0 && a.size() > 1) {
      return usage();
    } else {
      positional.push_back(a);
    }
  }
  Client client(g);
  if (cmd == "list" && positional.empty()) {
    return cmdList(client, output.empty() ? "table" : output);
  }
  if (cmd == "get" && positional.size() == 1) {
    return cmdGet(client, positional[0], output.empty() ? "table" : output);
  }
  if (cmd == "evict" && positional.size() == 1) {
    return cmdEvict(client, positional[0], id, reason);
  }
  if (cmd == "watch" && positional.empty()) {
    return cmdWatch(client, after, initial, output.empty() ? "text" : output);
  }
  if (cmd == "health" && positional.empty()) {
    return cmdHealth(client);
  }
  return usage();
}
