#include "server/app/app.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <future>

#include "server/api/node_host.h"
#include "server/app/admin_servers.h"
#include "server/common/log.h"
#include "server/common/token_path.h"

namespace epmdx::app {
namespace {

// What the admin servers get past their drain timeout to stop before run() returns.
constexpr std::chrono::milliseconds kStopMargin{100};

/// sd_listen_fds_with_names(): the inherited sockets (from descriptor 3 on) and their
/// FileDescriptorName= ("" when systemd gave none).
std::vector<std::pair<int, std::string>> systemdSockets() {
  std::vector<std::pair<int, std::string>> out;
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr || std::atol(pid) != static_cast<long>(getpid())) {
    return out;
  }
  std::vector<std::string> names;
  if (const char* n = std::getenv("LISTEN_FDNAMES"); n != nullptr) {
    std::string all(n);
    size_t start = 0;
    while (start <= all.size()) {
      const size_t colon = all.find(':', start);
      names.push_back(
          all.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
      if (colon == std::string::npos) {
        break;
      }
      start = colon + 1;
    }
  }
  for (int i = 0; i < std::atoi(fds); ++i) {
    out.emplace_back(3 + i, static_cast<size_t>(i) < names.size() ? names[i] : "");
  }
  return out;
}

}  // namespace

App::App(Options options) : options_(std::move(options)) {
  registry::RegistryOptions ro;
  ro.history_size = options_.history_size;
  ro.max_nodes = options_.max_nodes;
  if (options_.debug > 0) {
    ro.max_unreg_records = 5;  // OTP's DEBUG_MAX_UNREG_COUNT (the default is its MAX_UNREG_COUNT).
  }
  ro.cluster_names = {"default"};
  ro.takeover_unresponsive = options_.takeover_unresponsive;
  for (const auto& c : options_.clusters) {
    ro.cluster_names.push_back(c.name);
  }
  if (options_.revisions_from_clock) {
    ro.initial_revision =
        static_cast<registry::Revision>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  }
  registry_ = std::make_unique<registry::Registry>(ro);
  // Node.host needs the host names: read them (and ask the resolver) once, here, before any
  // epmd or API thread runs.
  api::daemonHostNames();

  // With -systemd, a socket named after a cluster serves it; every other one serves the
  // default cluster (systemd names unnamed sockets after their unit).
  std::vector<std::vector<int>> inherited(ro.cluster_names.size());
  if (options_.systemd) {
    for (const auto& [fd, name] : systemdSockets()) {
      auto id = registry_->findCluster(name);
      inherited[id && *id != registry::kDefaultCluster ? *id : 0].push_back(fd);
      ++systemd_fds_;
    }
  }
  for (size_t i = 0; i < ro.cluster_names.size(); ++i) {
    epmd::ListenerOptions lo;
    lo.port = i == 0 ? options_.port : options_.clusters[i - 1].port;
    lo.addresses = i == 0 ? options_.addresses : options_.clusters[i - 1].addresses;
    lo.relaxed = options_.relaxed;
    lo.packet_timeout = std::chrono::seconds(options_.packet_timeout);
    lo.delay_accept = std::chrono::seconds(options_.delay_accept);
    lo.delay_write = std::chrono::seconds(options_.delay_write);
    lo.inherited_fds = std::move(inherited[i]);
    auto cluster = std::make_unique<Cluster>();
    const auto id = static_cast<registry::ClusterId>(i);
    // KILL_REQ arrives on the epmd thread: act right there, as OTP exits right after its
    // "OK", so no request queued behind the KILL is served.
    cluster->listener = std::make_unique<epmd::Listener>(
        io_, registry::ClusterView(*registry_, id), metrics_, std::move(lo),
        [this, id](const std::string& peer) { killCluster(id, peer); });
    clusters_.push_back(std::move(cluster));
  }
  hold_expiry_ = std::make_unique<api::HoldExpiry>(*registry_);
  if (options_.holder_interval_s > 0) {
    holders_ = std::make_unique<api::HolderMonitor>(
        *registry_, std::chrono::milliseconds(options_.holder_interval_s * 1000));
  }
  if (options_.probe_interval_s > 0) {
    const auto interval = std::chrono::milliseconds(options_.probe_interval_s * 1000);
    health_ = std::make_unique<api::HealthMonitor>(
        *registry_,
        api::HealthOptions{interval, std::min(std::chrono::milliseconds(2000), interval / 2),
                           std::chrono::milliseconds(options_.evict_unresponsive_after_s * 1000)});
  }
  audit_ = std::make_unique<api::AuditLog>(*registry_);
  admin_ = std::make_unique<AdminServers>(*this);
  if (auto err = applyAccess()) {
    log::error(*err);  // parseArgs() checked it; only a file changed since can fail here.
  }
}

std::optional<std::string> App::applyAccess() {
  std::vector<std::string> names;
  for (size_t i = 0; i < clusters_.size(); ++i) {
    names.push_back(registry_->clusterName(static_cast<registry::ClusterId>(i)));
  }
  auto built = loadAccessPolicies(names, options_.access, options_.access_file);
  if (!built.ok()) {
    return built.error();
  }
  std::vector<epmd::AccessPolicyPtr> policies;
  {
    std::lock_guard<std::mutex> lock(clusters_mu_);
    for (size_t i = 0; i < clusters_.size(); ++i) {
      clusters_[i]->policy = std::make_shared<const epmd::AccessPolicy>(built.value()[i]);
      policies.push_back(clusters_[i]->policy);
    }
  }
  // The listeners live on the io thread: hand them the policies there (before run(), the
  // post simply runs first).
  asio::post(io_, [this, policies] {
    for (size_t i = 0; i < clusters_.size(); ++i) {
      clusters_[i]->listener->setPolicy(policies[i]);
    }
  });
  return std::nullopt;
}

void App::reloadAccess() {
  if (options_.access_file.empty()) {
    return;
  }
  if (auto err = applyAccess()) {
    log::error("access policy not reloaded; the one in force stays", {{"error", *err}});
  } else {
    log::info("access policy reloaded", {{"file", options_.access_file}});
  }
}

App::~App() {
  if (admin_stopper_.joinable()) {
    admin_stopper_.join();
  } else if (admin_) {
    admin_->stop();
  }
  admin_.reset();
  health_.reset();
  holders_.reset();
  hold_expiry_.reset();
  if (audit_) {
    audit_->stop();  // Writes what the last changes left pending.
  }
  // The listeners unlink the sessions still pending; io_ then destroys them, and they
  // touch nothing of the listener's any more (see Session::metrics_).
  clusters_.clear();
}

std::optional<int> App::bindCluster(size_t i) {
  Cluster& c = *clusters_[i];
  const auto r = c.listener->bind();
  if (r.status == epmd::Listener::BindStatus::AddressInUse && i == 0) {
    log::debug(r.message);  // OTP prints this only with -d, and exits 0.
    return 0;
  }
  if (r.status != epmd::Listener::BindStatus::Ok) {
    // A --cluster port was asked for explicitly: a taken one is an error, named.
    log::error(i == 0 ? r.message
                      : "cluster " + registry_->clusterName(static_cast<registry::ClusterId>(i)) +
                            ": " + r.message);
    return 1;
  }
  std::lock_guard<std::mutex> lock(clusters_mu_);
  c.endpoints = c.listener->endpoints();
  return std::nullopt;
}

std::optional<int> App::bind() {
  if (options_.systemd && systemd_fds_ == 0) {
    log::error("systemd provides no sockets");
    return 1;
  }
  for (size_t i = 0; i < clusters_.size(); ++i) {
    if (auto code = bindCluster(i)) {
      return code;
    }
  }
  if (!options_.audit_file.empty()) {
    if (auto err = audit_->start(options_.audit_file)) {
      log::error(*err);
      return 1;
    }
  }
  // Bound is ready: the kernel queues connections until run() accepts them.
  for (auto& c : clusters_) {
    c->serving = true;
  }
  epmd_listening_ = true;
  if (auto err = admin_->start()) {
    log::error(*err);
    return 1;
  }
  removeStaleTokenFilesOnce();
  return std::nullopt;
}

void App::removeStaleTokenFilesOnce() {
  // Generated token files are named after the admin port: without this, one would be left
  // behind for every port a daemon ever used. Those no running daemon holds go once ours
  // is published (a daemon restarted on the same port adopts its file before this runs).
  if (!options_.tokens_file.empty() || !options_.token_out.empty()) {
    return;  // No generated token, or a file of the user's naming: nothing piles up.
  }
  const uint16_t port = grpcPort() != 0 ? grpcPort() : httpPort();
  if (port == 0) {
    return;
  }
  const auto getenv_fn = [](const char* name) -> const char* { return std::getenv(name); };
  const std::string dir = tokenDirectory(getenv_fn);
  for (const auto& name : removeStaleTokenFiles(dir, tokenPathForPort(getenv_fn, port))) {
    log::info("removed the token file of a stopped daemon", {{"file", dir + "/" + name}});
  }
}

uint16_t App::grpcPort() const {
  return admin_->grpcPort();
}
uint16_t App::httpPort() const {
  return admin_->httpPort();
}

std::vector<api::ClusterState> App::clusterStates() const {
  std::vector<api::ClusterState> out;
  std::lock_guard<std::mutex> lock(clusters_mu_);
  for (const auto& c : clusters_) {
    out.push_back({c->listener->port(), c->endpoints, c->serving.load(),
                   c->policy ? c->policy->names.toString() : "any",
                   c->policy ? c->policy->lookups.toString() : "any"});
  }
  return out;
}

int App::run(bool handle_signals) {
  std::optional<asio::signal_set> signals;
  std::function<void()> wait_signal;
  if (handle_signals) {
    signals.emplace(io_, SIGINT, SIGTERM, SIGHUP);
    wait_signal = [this, &signals, &wait_signal] {
      signals->async_wait([this, &wait_signal](const boost::system::error_code& ec, int sig) {
        if (ec) {
          return;
        }
        if (sig == SIGHUP) {
          log::info("SIGHUP: reloading tokens and the access file");
          reloadTokens();
          reloadAccess();
          wait_signal();
          return;
        }
        log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        requestShutdown(0, registry::UnregisterReason::Shutdown);
      });
    };
    wait_signal();
  }
  std::string where;
  for (size_t i = 0; i < clusters_.size(); ++i) {
    clusters_[i]->listener->start();
    std::string eps;
    for (const auto& e : clusters_[i]->endpoints) {
      eps += (eps.empty() ? "" : ",") + e;
    }
    where +=
        (where.empty() ? "" : " ") +
        (i == 0 ? eps : registry_->clusterName(static_cast<registry::ClusterId>(i)) + "=" + eps);
  }
  log::info("epmdx serving", {{"epmd", where},
                              {"grpc", admin_->grpcPort() ? std::to_string(grpcPort()) : "off"},
                              {"http", admin_->httpPort() ? std::to_string(httpPort()) : "off"}});
  io_.run();
  epmd_listening_ = false;
  stopAdminWithin(std::chrono::milliseconds(options_.drain_timeout_ms) + kStopMargin);
  return exit_code_;
}

void App::stopAdminWithin(std::chrono::milliseconds budget) {
  // A client that stopped reading at the TCP level leaves gRPC's last writes pending, and
  // Server::Shutdown waits for them however it was told its deadline: for as long as TCP
  // keeps the connection (tens of seconds). run() therefore waits only `budget`, so that
  // SIGTERM ends the process within a second whatever the clients do; ~App joins the rest.
  auto done = std::make_shared<std::promise<void>>();
  auto stopped = done->get_future();
  admin_stopper_ = std::thread([this, done] {
    admin_->stop();
    done->set_value();
  });
  if (stopped.wait_for(budget) == std::future_status::timeout) {
    log::warn("admin servers still stopping, not waiting for them",
              {{"waited_ms", static_cast<int64_t>(budget.count())}});
  }
}

void App::requestShutdown(int exit_code, registry::UnregisterReason reason) {
  if (shutdown_started_.exchange(true)) {
    return;
  }
  asio::post(io_, [this, exit_code, reason] { shutdownOnIoThread(exit_code, reason); });
}

void App::killCluster(registry::ClusterId id, const std::string& peer) {
  if (shutdown_started_) {
    return;
  }
  Cluster& c = *clusters_[id];
  if (!c.serving.exchange(false)) {
    return;
  }
  // Each cluster port is an epmd of its own to its nodes (OTP's `epmd -port P -kill` ends
  // the epmd on P, nothing else), so KILL_REQ closes this port only; the daemon exits, as
  // OTP's epmd does, when the last port closes. One line says which.
  std::string still;
  for (size_t i = 0; i < clusters_.size(); ++i) {
    if (clusters_[i]->serving) {
      still += (still.empty() ? "" : ",") +
               registry_->clusterName(static_cast<registry::ClusterId>(i)) + ":" +
               std::to_string(clusters_[i]->listener->port());
    }
  }
  const auto cluster = registry_->clusterName(id);
  const uint16_t port = c.listener->port();
  const size_t ended = registry_->size(id);
  if (still.empty()) {
    log::info("KILL_REQ: last epmd port closed, exiting",
              {{"cluster", cluster}, {"port", port}, {"by", peer}});
    shutdown_started_ = true;
    shutdownOnIoThread(0, registry::UnregisterReason::Killed);
    return;
  }
  log::info("KILL_REQ: cluster closed, the daemon still serves the others",
            {{"cluster", cluster},
             {"port", port},
             {"by", peer},
             {"registrations_ended", ended},
             {"still_serving", still}});
  c.listener->stop();
  registry_->removeAll(registry::UnregisterReason::Killed, id);
}

void App::shutdownOnIoThread(int exit_code, registry::UnregisterReason reason) {
  exit_code_ = exit_code;
  // Order matters to clients: first say "not ready", then end streams, then stop serving.
  draining_ = true;
  admin_->beginDrain();
  for (auto& c : clusters_) {
    c->listener->stop();
    c->serving = false;
  }
  epmd_listening_ = false;
  registry_->removeAll(reason);
  io_.stop();
}

void App::reloadTokens() {
  admin_->reloadTokens();
}

}  // namespace epmdx::app
