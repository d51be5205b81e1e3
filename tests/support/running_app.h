#pragma once

// An in-process epmdx (the real App: registry, epmd listener, admin servers) on ephemeral
// ports, served on its own thread for the duration of a test.

#include <memory>
#include <thread>

#include "server/app/app.h"

namespace epmdx::testing {

class RunningApp {
 public:
  explicit RunningApp(app::Options options);
  ~RunningApp();

  /// Options for tests: port 0 for every listener, short packet timeout.
  static app::Options testOptions();

  app::App& app() { return *app_; }
  uint16_t port() const { return app_->epmdPort(); }
  /// Waits for run() to return (after a KILL_REQ, say); its exit code or -1 on timeout.
  int waitExit(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<app::App> app_;
  std::thread thread_;
  std::atomic<int> exit_code_{-1};
};

}  // namespace epmdx::testing
