// The Erlang cookie on a holder's command line never leaves the daemon.
// Real erl and elixir nodes, each given its cookie in another way (-setcookie C,
// -setcookie NODE C, ERL_FLAGS, -args_file, Elixir's --cookie C); with --holder-interval on,
// every surface that shows the holder is read: REST get, list and events, gRPC Get and List
// (epmdxctl get/list -o json), the gRPC and SSE watch streams' HOLDER_CHANGED events, and
// the audit lines of their evictions. Each shows "-setcookie [redacted]", no cookie.

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/support/app_with_nodes.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"
#include "tests/support/sse_client.h"

namespace epmdx::testing {
namespace {

using registry::HolderFact;

class CookieRedactionTest : public AppWithNodes {
 protected:
  void SetUp() override {
    auto o = RunningApp::testOptions();
    o.holder_interval_s = 1;
    startApp(o);
    suffix_ = "x" + std::to_string(app_->port());
  }

  std::map<std::string, std::string> env(std::map<std::string, std::string> extra = {}) {
    extra["ERL_EPMD_PORT"] = std::to_string(app_->port());
    extra["HOME"] = dir_;  // A -setcookie NODE C node reads its own cookie from here.
    return extra;
  }

  void start(const std::string& name, std::vector<std::string> argv,
             std::map<std::string, std::string> extra_env = {}) {
    names_.push_back(name);
    nodes_.push_back(std::make_unique<Process>(std::move(argv), env(std::move(extra_env))));
  }

  // Fails the test if `text` (read from `where`) holds any of the cookies.
  void expectNoCookie(const std::string& text, const std::string& where) {
    for (const auto& c : cookies_) {
      EXPECT_EQ(text.find(c), std::string::npos) << where << " shows cookie " << c << ":\n" << text;
    }
  }

  std::string suffix_;
  std::vector<std::string> names_;
  std::vector<std::string> cookies_;
};

TEST_F(CookieRedactionTest, NoSurfaceShowsTheCookie) {
  for (const char* c : {"plainCk", "nodeCk", "envCk", "fileCk", "elixirCk"}) {
    cookies_.push_back(c + suffix_);
  }
  const std::string grpc = "--server=127.0.0.1:" + std::to_string(app_->app().grpcPort());
  const uint64_t before = reg().revision();
  Process watch({epmdxctlBinary(), grpc, "--token=admintok", "watch",
                 "--after=" + std::to_string(before), "-o", "json"});

  const std::vector<std::string> erl{"erl",   "-noshell", "-start_epmd",
                                     "false", "-eval",    "timer:sleep(120000)."};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), erl.begin(), erl.end());
    return args;
  };
  start("plain" + suffix_, with({"-sname", "plain" + suffix_, "-setcookie", cookies_[0]}));
  start("node" + suffix_,
        with({"-sname", "node" + suffix_, "-setcookie", "peer@somehost", cookies_[1]}));
  start("env" + suffix_, with({"-sname", "env" + suffix_}),
        {{"ERL_FLAGS", "-setcookie " + cookies_[2]}});
  std::ofstream(dir_ + "/vm.args") << "-setcookie " << cookies_[3] << "\n";
  start("file" + suffix_, with({"-sname", "file" + suffix_, "-args_file", dir_ + "/vm.args"}));
  start("elixir" + suffix_, {"elixir", "--sname", "elixir" + suffix_, "--cookie", cookies_[4],
                             "--erl", "-start_epmd false", "-e", ":timer.sleep(120000)"});

  // The daemon's own record: the holder is found, its command line says a cookie was given.
  for (size_t i = 0; i < names_.size(); ++i) {
    registry::RegistrationPtr r;
    ASSERT_TRUE(eventually([&] {
      r = reg().find(names_[i]);
      return r && r->holder && r->holder->status == HolderFact::Status::Found;
    })) << names_[i]
        << "\n"
        << nodes_[i]->stderrText();
    ASSERT_EQ(r->holder->processes.size(), 1u);
    const std::string& line = r->holder->processes[0].command_line;
    EXPECT_NE(line.find("-setcookie "), std::string::npos) << line;
    EXPECT_NE(line.find("[redacted]"), std::string::npos) << line;
    EXPECT_NE(line.find("-sname " + names_[i]), std::string::npos) << line;
    expectNoCookie(line, "HolderProcess.command_line of " + names_[i]);
    // The cookie really was on the VM's argv (so this test can catch a leak).
    const std::string proc =
        readFile("/proc/" + std::to_string(r->holder->processes[0].pid) + "/cmdline");
    EXPECT_NE(proc.find(cookies_[i]), std::string::npos) << names_[i];
  }
  EXPECT_NE(reg().find(names_[1])->holder->processes[0].command_line.find(
                "-setcookie peer@somehost [redacted]"),
            std::string::npos);

  // REST: get, list, events.
  httplib::Client http("127.0.0.1", app_->app().httpPort());
  for (const auto& name : names_) {
    auto got = http.Get("/v1/nodes/" + name);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->status, 200);
    EXPECT_NE(got->body.find("[redacted]"), std::string::npos) << got->body;
    expectNoCookie(got->body, "GET /v1/nodes/" + name);
  }
  for (const std::string path : {"/v1/nodes", "/v1/events?limit=1000"}) {
    auto got = http.Get(path);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->status, 200);
    EXPECT_NE(got->body.find("[redacted]"), std::string::npos) << path;
    expectNoCookie(got->body, "GET " + path);
  }

  // gRPC Get and List, through epmdxctl.
  for (const auto& name : names_) {
    const auto [code, out] =
        runCommand({epmdxctlBinary(), grpc, "--token=admintok", "get", name, "-o", "json"});
    EXPECT_EQ(code, 0) << out;
    EXPECT_NE(out.find("[redacted]"), std::string::npos) << out;
    expectNoCookie(out, "epmdxctl get " + name);
  }
  const auto [code, listed] =
      runCommand({epmdxctlBinary(), grpc, "--token=admintok", "list", "-o", "json"});
  EXPECT_EQ(code, 0) << listed;
  EXPECT_NE(listed.find("[redacted]"), std::string::npos) << listed;
  expectNoCookie(listed, "epmdxctl list");

  // SSE: every HOLDER_CHANGED since the start.
  std::set<std::string> seen;
  std::string sse;
  ASSERT_EQ(readSse(app_->app().httpPort(), "/v1/watch?since=" + std::to_string(before), {},
                    [&](const SseEvent& e) {
                      sse += e.data + "\n";
                      if (e.data.find("\"HOLDER_CHANGED\"") != std::string::npos) {
                        for (const auto& name : names_) {
                          if (e.data.find("\"name\":\"" + name + "\"") != std::string::npos) {
                            seen.insert(name);
                          }
                        }
                      }
                      return seen.size() < names_.size();
                    }),
            200);
  EXPECT_NE(sse.find("[redacted]"), std::string::npos) << sse;
  expectNoCookie(sse, "the SSE watch");

  // gRPC watch (epmdxctl watch -o json): the same events.
  std::string watched;
  EXPECT_TRUE(eventually([&] {
    watched = watch.stdoutText();
    size_t n = 0;
    for (size_t at = 0; (at = watched.find("HOLDER_CHANGED", at)) != std::string::npos; ++at) {
      ++n;
    }
    return n >= names_.size();
  })) << watched
      << watch.stderrText();
  EXPECT_NE(watched.find("[redacted]"), std::string::npos);
  expectNoCookie(watched, "epmdxctl watch");
  watch.signal(SIGTERM);

  // The audit file: each eviction's line carries the registration with its holder.
  for (const auto& name : names_) {
    auto evicted = http.Delete("/v1/nodes/" + name, {{"Authorization", "Bearer admintok"}});
    ASSERT_TRUE(evicted);
    EXPECT_EQ(evicted->status, 200) << evicted->body;
  }
  std::string audit;
  ASSERT_TRUE(eventually([&] {
    audit = readFile(dir_ + "/audit.jsonl");
    return std::count(audit.begin(), audit.end(), '\n') >= static_cast<long>(names_.size());
  })) << audit;
  EXPECT_NE(audit.find("-setcookie [redacted]"), std::string::npos) << audit;
  expectNoCookie(audit, "the audit file");
}

}  // namespace
}  // namespace epmdx::testing
