#pragma once

// The fixture of the dead-names integration tests: an in-process epmdx (RunningApp) with its
// own directory (tokens "admintok read evict name=ops", the audit file), and the real Erlang
// nodes a test starts against it. Nodes are resumed (a test may have SIGSTOPped them) and
// ended before the daemon stops, so no VM outlives its test.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {

class AppWithNodes : public ::testing::Test {
 protected:
  /// Starts the daemon with `o` (from RunningApp::testOptions()), its files under dir_.
  void startApp(app::Options o) {
    dir_ = "/tmp/epmdx-" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name()) +
           "-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/tokens") << "admintok read evict name=ops\n";
    o.tokens_file = dir_ + "/tokens";
    o.audit_file = dir_ + "/audit.jsonl";
    o.packet_timeout = 60;
    app_ = std::make_unique<RunningApp>(o);
  }

  void TearDown() override {
    for (auto& n : nodes_) {
      n->signal(SIGCONT);
    }
    nodes_.clear();
    app_.reset();
    if (!dir_.empty()) {
      std::filesystem::remove_all(dir_);
    }
  }

  registry::Registry& reg() { return app_->app().registry(); }

  /// `erl -sname NAME` (or `flag` "-name") registered with this daemon, running `eval`.
  Process& startNode(const std::string& name, const std::string& eval = "timer:sleep(120000).",
                     const std::string& flag = "-sname") {
    nodes_.push_back(std::make_unique<Process>(
        std::vector<std::string>{"erl", flag, name, "-setcookie", "epmdxtest", "-noshell",
                                 "-start_epmd", "false", "-eval", eval},
        std::map<std::string, std::string>{{"ERL_EPMD_PORT", std::to_string(app_->port())},
                                           {"HOME", "/tmp"}}));
    return *nodes_.back();
  }

  std::string dir_;
  std::unique_ptr<RunningApp> app_;
  std::vector<std::unique_ptr<Process>> nodes_;
};

}  // namespace epmdx::testing
