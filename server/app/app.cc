#include "server/app/app.h"

#include <csignal>
#include <future>

#include "server/app/admin_servers.h"
#include "server/common/log.h"

namespace epmdx::app {
namespace {

// What the admin servers get past their drain timeout to stop before run() returns.
constexpr std::chrono::milliseconds kStopMargin{100};

}  // namespace

App::App(Options options) : options_(std::move(options)) {
  registry::RegistryOptions ro;
  ro.history_size = options_.history_size;
  ro.max_nodes = options_.max_nodes;
  ro.max_unreg_records = options_.debug > 0 ? 5 : 1000;  // OTP's DEBUG_MAX_UNREG_COUNT.
  if (options_.revisions_from_clock) {
    ro.initial_revision =
        static_cast<registry::Revision>(std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  }
  registry_ = std::make_unique<registry::Registry>(ro);

  epmd::ListenerOptions lo;
  lo.port = options_.port;
  lo.addresses = options_.addresses;
  lo.relaxed = options_.relaxed;
  lo.packet_timeout = std::chrono::seconds(options_.packet_timeout);
  lo.delay_accept = std::chrono::seconds(options_.delay_accept);
  lo.delay_write = std::chrono::seconds(options_.delay_write);
  if (options_.systemd) {
    // sd_listen_fds(): LISTEN_PID must be us; descriptors start at 3.
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    if (pid != nullptr && fds != nullptr && std::atol(pid) == static_cast<long>(getpid())) {
      for (int i = 0; i < std::atoi(fds); ++i) {
        lo.inherited_fds.push_back(3 + i);
      }
    }
    systemd_fds_ = lo.inherited_fds.size();
  }
  // KILL_REQ arrives on the epmd thread: stop right there, as OTP exits right after its
  // "OK", so no request queued behind the KILL is served.
  listener_ = std::make_unique<epmd::Listener>(io_, *registry_, metrics_, std::move(lo), [this] {
    if (!shutdown_started_.exchange(true)) {
      shutdownOnIoThread(0, registry::UnregisterReason::Killed);
    }
  });
  admin_ = std::make_unique<AdminServers>(*this);
}

App::~App() {
  if (admin_stopper_.joinable()) {
    admin_stopper_.join();
  } else if (admin_) {
    admin_->stop();
  }
  admin_.reset();
  // The listener unlinks the sessions still pending; io_ then destroys them, and they
  // touch nothing of the listener's any more (see Session::metrics_).
  listener_.reset();
}

std::optional<int> App::bind() {
  if (options_.systemd && systemd_fds_ == 0) {
    log::error("systemd provides no sockets");
    return 1;
  }
  const auto r = listener_->bind();
  if (r.status == epmd::Listener::BindStatus::AddressInUse) {
    log::debug(r.message);  // OTP prints this only with -d, and exits 0.
    return 0;
  }
  if (r.status == epmd::Listener::BindStatus::Failed) {
    log::error(r.message);
    return 1;
  }
  if (auto err = admin_->start()) {
    log::error(*err);
    return 1;
  }
  return std::nullopt;
}

uint16_t App::grpcPort() const {
  return admin_->grpcPort();
}
uint16_t App::httpPort() const {
  return admin_->httpPort();
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
          log::info("SIGHUP: reloading tokens");
          reloadTokens();
          wait_signal();
          return;
        }
        log::info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
        requestShutdown(0, registry::UnregisterReason::Shutdown);
      });
    };
    wait_signal();
  }
  listener_->start();
  epmd_listening_ = true;
  std::string where;
  for (const auto& e : listener_->endpoints()) {
    where += (where.empty() ? "" : ",") + e;
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

void App::shutdownOnIoThread(int exit_code, registry::UnregisterReason reason) {
  exit_code_ = exit_code;
  // Order matters to clients: first say "not ready", then end streams, then stop serving.
  draining_ = true;
  admin_->beginDrain();
  listener_->stop();
  epmd_listening_ = false;
  registry_->removeAll(reason);
  io_.stop();
}

void App::reloadTokens() {
  admin_->reloadTokens();
}

}  // namespace epmdx::app
