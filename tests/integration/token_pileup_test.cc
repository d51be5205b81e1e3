// Generated admin token files do not pile up in the token directory, one per admin port
// ever used: a daemon that publishes its generated token removes the files of daemons
// that stopped (no running daemon holds their lock), keeps those of running daemons, and
// touches nothing that is not a generated token file of ours. Real epmdx processes.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::unique_ptr<Process> startDaemon(const std::string& runtime_dir,
                                     const std::string& grpc = "127.0.0.1:0") {
  return std::make_unique<Process>(
      std::vector<std::string>{epmdxBinary(), "-port", std::to_string(freePort()),
                               "--grpc-listen=" + grpc, "--http-listen=off"},
      std::map<std::string, std::string>{{"XDG_RUNTIME_DIR", runtime_dir},
                                         {"EPMDX_TOKEN_FILE", ""}});
}

/// The token file a daemon logged, once it serves.
std::string tokenFileOf(Process& p) {
  std::string file;
  EXPECT_TRUE(eventually(
      [&] {
        std::smatch m;
        const std::string log = p.stderrText();
        if (log.find("epmdx serving") == std::string::npos ||
            !std::regex_search(log, m, std::regex("admin token[^\n]* file=([^ \n]+)"))) {
          return false;
        }
        file = m[1];
        return true;
      },
      30s))
      << p.stderrText();
  return file;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TokenPileup, AStoppedDaemonsFileGoesWhenAnotherDaemonPublishesItsOwn) {
  std::string tmpl = "/tmp/epmdx-token-pileup-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const std::string runtime = tmpl, dir = runtime + "/epmdx";

  auto a = startDaemon(runtime);
  const std::string file_a = tokenFileOf(*a);
  ASSERT_FALSE(file_a.empty());
  a->signal(SIGTERM);
  ASSERT_EQ(a->wait(10s), std::optional<int>(0));
  ASSERT_TRUE(fs::exists(file_a)) << "kept at a clean stop: a restart on its port adopts it";

  // Things the pruning must leave alone: not a generated name, a symlink, someone's file.
  std::ofstream(dir + "/notes.txt") << "mine\n";
  std::ofstream(dir + "/admin-x.token") << "not a port\n";
  std::ofstream(runtime + "/elsewhere") << "target\n";
  fs::create_symlink(runtime + "/elsewhere", dir + "/admin-1.token");

  auto b = startDaemon(runtime);  // Another port.
  const std::string file_b = tokenFileOf(*b);
  ASSERT_NE(file_b, file_a);
  EXPECT_TRUE(eventually([&] { return !fs::exists(file_a); }, 5s)) << "the stopped daemon's file";
  EXPECT_NE(b->stderrText().find("removed the token file of a stopped daemon file=" + file_a),
            std::string::npos)
      << b->stderrText();

  // A running daemon's file stays: C starts while B runs.
  auto c = startDaemon(runtime);
  const std::string file_c = tokenFileOf(*c);
  ASSERT_NE(file_c, file_b);
  EXPECT_TRUE(fs::exists(file_b));
  EXPECT_TRUE(fs::exists(file_c));
  EXPECT_EQ(c->stderrText().find("removed the token file"), std::string::npos) << c->stderrText();

  std::vector<std::string> expected{"admin-1.token", fs::path(file_b).filename().string(),
                                    fs::path(file_c).filename().string(), "admin-x.token",
                                    "notes.txt"};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(entries(dir), expected);
  EXPECT_TRUE(fs::is_symlink(dir + "/admin-1.token"));
  EXPECT_TRUE(fs::exists(runtime + "/elsewhere"));

  // A restart on B's port still adopts B's token (its file was never anyone else's to drop).
  std::string token_b;
  std::getline(std::ifstream(file_b), token_b);
  const std::string port_b = std::regex_replace(fs::path(file_b).filename().string(),
                                                std::regex("admin-([0-9]+)\\.token"), "$1");
  b->signal(SIGTERM);
  ASSERT_EQ(b->wait(10s), std::optional<int>(0));
  b = startDaemon(runtime, "127.0.0.1:" + port_b);
  EXPECT_EQ(tokenFileOf(*b), file_b);
  EXPECT_NE(b->stderrText().find("adopted the admin token"), std::string::npos) << b->stderrText();
  std::string again;
  std::getline(std::ifstream(file_b), again);
  EXPECT_EQ(again, token_b);

  b.reset();
  c.reset();
  fs::remove_all(runtime);
}

}  // namespace
}  // namespace epmdx::testing
