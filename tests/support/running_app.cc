#include "tests/support/running_app.h"

#include <stdexcept>

namespace epmdx::testing {

app::Options RunningApp::testOptions() {
  app::Options o;
  o.port = 0;
  o.grpc_listen = "127.0.0.1:0";
  o.http_listen = "127.0.0.1:0";
  o.packet_timeout = 1;
  o.revisions_from_clock = false;
  o.token_out = "/tmp/epmdx-test-token-" + std::to_string(getpid()) + "-" +
                std::to_string(reinterpret_cast<uintptr_t>(&o) & 0xFFFF);
  return o;
}

RunningApp::RunningApp(app::Options options)
    : app_(std::make_unique<app::App>(std::move(options))) {
  if (auto code = app_->bind()) {
    throw std::runtime_error("epmdx failed to bind: exit " + std::to_string(*code));
  }
  thread_ = std::thread([this] { exit_code_ = app_->run(false); });
}

RunningApp::~RunningApp() {
  app_->requestShutdown(0, registry::UnregisterReason::Shutdown);
  if (thread_.joinable()) {
    thread_.join();
  }
}

int RunningApp::waitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (exit_code_ == -1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Polling with a deadline.
  }
  return exit_code_;
}

}  // namespace epmdx::testing
