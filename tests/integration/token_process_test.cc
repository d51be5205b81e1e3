// Tokens in real epmdx processes: per-daemon token files with the default settings (only the
// ports ephemeral), adoption across a restart, and a real SIGHUP with a broken tokens file.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/epmdx-token-process-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Polls `done` until it holds or `timeout` passes.
std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// A daemon with the default admin settings except ephemeral ports.
std::unique_ptr<Process> startDaemon(const std::string& runtime_dir,
                                     const std::string& grpc = "127.0.0.1:0",
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{epmdxBinary(), "-port", std::to_string(freePort()),
                                "--grpc-listen=" + grpc, "--http-listen=127.0.0.1:0"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Process>(
      argv, std::map<std::string, std::string>{{"XDG_RUNTIME_DIR", runtime_dir},
                                               {"EPMDX_TOKEN_FILE", ""}});
}

bool serving(Process& p) {
  return eventually([&p] { return p.stderrText().find("epmdx serving") != std::string::npos; },
                    30s);
}

std::string logValue(const std::string& log, const std::string& key) {
  std::smatch m;
  if (std::regex_search(log, m, std::regex(key + "=([^ \n]+)"))) {
    return m[1];
  }
  return "";
}

TEST(TokenProcess, TwoDaemonsWithDefaultsWriteTwoFilesAndARestartAdopts) {
  TempDir runtime;
  auto a = startDaemon(runtime.path());
  auto b = startDaemon(runtime.path());
  ASSERT_TRUE(serving(*a)) << a->stderrText();
  ASSERT_TRUE(serving(*b)) << b->stderrText();
  const std::string grpc_a = logValue(a->stderrText(), "grpc");
  const std::string file_a = runtime.path() + "/epmdx/admin-" + grpc_a + ".token";
  const std::string file_b =
      runtime.path() + "/epmdx/admin-" + logValue(b->stderrText(), "grpc") + ".token";
  EXPECT_EQ(logValue(a->stderrText(), "file"), file_a);
  EXPECT_EQ(logValue(b->stderrText(), "file"), file_b);
  ASSERT_NE(file_a, file_b);
  const std::string token_a = firstLine(file_a);
  EXPECT_EQ(token_a.size(), 64u);
  EXPECT_NE(token_a, firstLine(file_b));
  struct stat st {};
  ASSERT_EQ(stat(file_a.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(stat((runtime.path() + "/epmdx").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  a->signal(SIGTERM);
  ASSERT_EQ(a->wait(5s), 0);
  a = startDaemon(runtime.path(), "127.0.0.1:" + grpc_a);
  ASSERT_TRUE(serving(*a)) << a->stderrText();
  EXPECT_NE(a->stderrText().find("adopted the admin token"), std::string::npos) << a->stderrText();
  EXPECT_EQ(firstLine(file_a), token_a);
  // Nothing else in the directory: no temporary file left behind.
  EXPECT_EQ(
      std::distance(fs::directory_iterator(runtime.path() + "/epmdx"), fs::directory_iterator()),
      2);
}

TEST(TokenProcess, SighupWithABrokenTokensFileLogsNoTokenAndWarnsAboutItsMode) {
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  std::ofstream(tokens) << "good-token-0123456789 read\n";
  chmod(tokens.c_str(), 0644);
  auto d = startDaemon(dir.path(), "127.0.0.1:0", {"--tokens-file=" + tokens});
  ASSERT_TRUE(serving(*d)) << d->stderrText();
  EXPECT_NE(d->stderrText().find("readable by group or others"), std::string::npos);
  EXPECT_NE(d->stderrText().find("mode=0644"), std::string::npos) << d->stderrText();

  std::ofstream(tokens, std::ios::trunc)
      << "good-token-0123456789 read\nsecret-AAAAAAAAAAAA secret-BBBBBBBBBBBB read\n";
  d->signal(SIGHUP);
  ASSERT_TRUE(eventually([&d] {
    return d->stderrText().find("tokens not reloaded") != std::string::npos;
  })) << d->stderrText();
  const std::string log = d->stderrText();
  EXPECT_NE(log.find("line 2: field 2 is not a scope"), std::string::npos) << log;
  EXPECT_EQ(log.find("secret-"), std::string::npos) << log;
  EXPECT_EQ(log.find("good-token"), std::string::npos) << log;
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(5s), 0);
}

}  // namespace
}  // namespace epmdx::testing
