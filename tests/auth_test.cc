#include "server/api/auth.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "server/api/token_file.h"
#include "server/common/token_path.h"
#include "tests/support/running_app.h"

namespace epmdx::api {
namespace {

namespace fs = std::filesystem;
using testing::RunningApp;

// A fresh private directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/epmdx-auth-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    path_ = tmpl;
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void writeFile(const std::string& path, const std::string& content, mode_t mode = 0600) {
  std::ofstream(path, std::ios::trunc) << content;
  chmod(path.c_str(), mode);
}

std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

TEST(TokenStore, FileScopesIdentitiesAndReload) {
  TempDir dir;
  const std::string path = dir.file("tokens");
  writeFile(path, "# comment\n\nrw read evict name=ops\nro read  # dashboards\n");
  TokenStore s;
  ASSERT_FALSE(s.loadFile(path).has_value());
  Principal who;
  EXPECT_EQ(s.check("Bearer rw", Scope::Evict, &who), TokenStore::Check::Ok);
  EXPECT_EQ(who.identity, "ops");
  EXPECT_EQ(s.check("Bearer ro", Scope::Read, &who), TokenStore::Check::Ok);
  EXPECT_EQ(who.identity, "token-4");
  EXPECT_EQ(s.check("Bearer ro", Scope::Evict), TokenStore::Check::PermissionDenied);
  EXPECT_EQ(s.check("Bearer nope", Scope::Read), TokenStore::Check::Unauthenticated);
  writeFile(path, "new read\n");
  ASSERT_FALSE(s.reload().has_value());
  EXPECT_EQ(s.check("Bearer rw", Scope::Read), TokenStore::Check::Unauthenticated);
  EXPECT_EQ(s.check("Bearer new", Scope::Read), TokenStore::Check::Ok);
  // A broken file keeps the old tokens.
  writeFile(path, "bad wrongscope\n");
  EXPECT_TRUE(s.reload().has_value());
  EXPECT_EQ(s.check("Bearer new", Scope::Read), TokenStore::Check::Ok);
}

TEST(TokenStore, MissingOrSpecialFileIsAnError) {
  TokenStore s;
  EXPECT_TRUE(s.loadFile("/nonexistent/tokens").has_value());
  EXPECT_TRUE(s.loadFile("/tmp").has_value());  // A directory is not a tokens file.
}

TEST(BearerScheme, CaseInsensitiveAndSpacesTolerated) {
  TokenStore s;
  s.setForTest("tok", {"t", true, false});
  for (const char* ok : {"Bearer tok", "bearer tok", "BEARER tok", "BeArEr tok", "Bearer   tok",
                         "Bearer\ttok", "  Bearer tok  ", "bearer \t tok\t"}) {
    EXPECT_EQ(s.check(ok, Scope::Read), TokenStore::Check::Ok) << ok;
  }
  for (const char* bad :
       {"", "Bearer", "Bearer ", "Bearer    ", "Bearertok", "Basic tok", "tok", "Bearer tok tok",
        "Bearer to k", "Bear tok", "Bearer tok2", "Bearer TOK"}) {
    EXPECT_EQ(s.check(bad, Scope::Read), TokenStore::Check::Unauthenticated) << bad;
  }
  EXPECT_EQ(bearerToken("bEARER   abc "), "abc");
}

TEST(ParseTokens, LinesFieldsAndErrors) {
  TokenMap m;
  ASSERT_FALSE(parseTokens("a read\r\nb\tevict\tname=x\n\n   c read evict", m).has_value());
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m["a"], (Principal{"token-1", true, false}));
  EXPECT_EQ(m["b"], (Principal{"x", false, true}));
  EXPECT_EQ(m["c"], (Principal{"token-4", true, true}));

  const auto error = [](std::string_view text) {
    TokenMap out;
    return parseTokens(text, out).value_or("");
  };
  EXPECT_EQ(error("ok read\nsecret-one secret-two read\n"),
            "line 2: field 2 is not a scope (scopes: read, evict; name=IDENTITY)");
  EXPECT_EQ(error("lonely\n"), "line 1: a token needs a scope (read, evict)");
  EXPECT_EQ(error("t read\n\nt evict\n"), "line 3: the same token as line 1");
  EXPECT_EQ(error("t\x01 read\n"),
            "line 1: the token has a byte that no header can carry (visible ASCII only)");
  EXPECT_EQ(error("t read name=\n"),
            "line 1: field 3 is not a scope (scopes: read, evict; name=IDENTITY)");
  // Identities travel in events (Protobuf strings are UTF-8) and logs: printable UTF-8 only.
  EXPECT_EQ(error("t read name=ops-\xFF\n"), "line 1: field 3 is not a printable UTF-8 name");
  EXPECT_EQ(error("t read name=a\x7F\n"), "line 1: field 3 is not a printable UTF-8 name");
  EXPECT_FALSE(error("t read name=zo\xC3\xAB\n").size());
  EXPECT_EQ(error(""), "");
}

TEST(GeneratedToken, WrittenThenAdoptedAfterARestart) {
  TempDir dir;
  const std::string path = dir.file("epmdx/admin-4370.token");
  std::string token;
  {
    TokenStore first;
    first.generate();
    auto r = first.publishGenerated(path);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.value(), TokenStore::Published::Written);
    token = firstLine(path);
    EXPECT_TRUE(wellFormedToken(token));
    EXPECT_EQ(first.check("Bearer " + token, Scope::Evict), TokenStore::Check::Ok);
  }
  {
    TokenStore second;  // The same daemon, restarted.
    second.generate();
    auto r = second.publishGenerated(path);
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.value(), TokenStore::Published::Adopted);
    EXPECT_EQ(firstLine(path), token);
    EXPECT_EQ(second.check("Bearer " + token, Scope::Evict), TokenStore::Check::Ok);
  }
  // A file others could read is not trusted: a fresh token replaces it, privately.
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  TokenStore third;
  third.generate();
  auto r = third.publishGenerated(path);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), TokenStore::Published::Written);
  const std::string fresh = firstLine(path);
  EXPECT_NE(fresh, token);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(third.check("Bearer " + token, Scope::Read), TokenStore::Check::Unauthenticated);
  EXPECT_EQ(third.check("Bearer " + fresh, Scope::Read), TokenStore::Check::Ok);
}

TEST(GeneratedToken, AFileInUseByALiveStoreIsNeitherAdoptedNorReplaced) {
  TempDir dir;
  const std::string path = dir.file("admin.token");
  TokenStore live;
  live.generate();
  ASSERT_TRUE(live.publishGenerated(path).ok());
  const std::string token = firstLine(path);
  TokenStore other;
  other.generate();
  auto r = other.publishGenerated(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().find("another epmdx"), std::string::npos) << r.error();
  EXPECT_EQ(r.error().find(token), std::string::npos);
  EXPECT_EQ(firstLine(path), token);
  EXPECT_EQ(other.check("Bearer " + token, Scope::Read), TokenStore::Check::Unauthenticated);
}

// ---- In a running daemon ---------------------------------------------------------------

// HTTP with reads closed to anonymous clients: status 200 proves the token was accepted.
int httpStatus(uint16_t port, const std::string& authorization) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_connection_timeout(5);
  cli.set_read_timeout(5);
  auto res = cli.Get("/v1/nodes", {{"Authorization", authorization}});
  return res ? res->status : -1;
}

app::Options closedReads() {
  auto o = RunningApp::testOptions();
  o.http_anonymous_read = false;
  return o;
}

TEST(DaemonTokens, TwoDaemonsWriteTwoFilesAndARestartAdopts) {
  TempDir runtime;
  setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  unsetenv("EPMDX_TOKEN_FILE");
  auto o = closedReads();
  o.token_out.clear();  // The default: one file per daemon, named after its gRPC port.
  auto a = std::make_unique<RunningApp>(o);
  RunningApp b(o);
  const uint16_t grpc_a = a->app().grpcPort();
  const std::string file_a =
      tokenPathForPort([](const char* n) -> const char* { return std::getenv(n); }, grpc_a);
  const std::string file_b =
      runtime.path() + "/epmdx/admin-" + std::to_string(b.app().grpcPort()) + ".token";
  EXPECT_EQ(file_a, runtime.path() + "/epmdx/admin-" + std::to_string(grpc_a) + ".token");
  ASSERT_NE(file_a, file_b);
  const std::string token_a = firstLine(file_a);
  const std::string token_b = firstLine(file_b);
  ASSERT_TRUE(wellFormedToken(token_a));
  ASSERT_TRUE(wellFormedToken(token_b));
  EXPECT_NE(token_a, token_b);
  // Each token opens its own daemon only (lower-case scheme and extra spaces, as clients send).
  EXPECT_EQ(httpStatus(a->app().httpPort(), "bearer  " + token_a), 200);
  EXPECT_EQ(httpStatus(b.app().httpPort(), "BEARER " + token_b), 200);
  EXPECT_EQ(httpStatus(a->app().httpPort(), "Bearer " + token_b), 401);
  EXPECT_EQ(httpStatus(b.app().httpPort(), "Bearer " + token_a), 401);

  // Daemon a restarts on its gRPC port: it adopts its token, clients holding it keep working.
  a.reset();
  o.grpc_listen = "127.0.0.1:" + std::to_string(grpc_a);
  a = std::make_unique<RunningApp>(o);
  EXPECT_EQ(firstLine(file_a), token_a);
  EXPECT_EQ(httpStatus(a->app().httpPort(), "Bearer " + token_a), 200);
  EXPECT_EQ(firstLine(file_b), token_b);
}

// Two daemons that would share a token file (one --token-out for both, or one gRPC port) do
// not: the second one stops at start, and the first one's file is unchanged.
TEST(DaemonTokens, ASecondDaemonOnTheSameTokenFileDoesNotStart) {
  TempDir runtime;
  setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  unsetenv("EPMDX_TOKEN_FILE");
  auto o = closedReads();
  o.token_out = runtime.file("shared.token");
  RunningApp a(o);
  const std::string token = firstLine(o.token_out);
  {
    app::App b(o);
    EXPECT_EQ(b.bind(), 1);
  }
  EXPECT_EQ(firstLine(o.token_out), token);

  o.token_out.clear();  // Per-port files, and d asks for c's gRPC port.
  RunningApp c(o);
  const uint16_t grpc_c = c.app().grpcPort();
  const std::string file_c = runtime.path() + "/epmdx/admin-" + std::to_string(grpc_c) + ".token";
  const std::string token_c = firstLine(file_c);
  o.grpc_listen = "127.0.0.1:" + std::to_string(grpc_c);
  o.grpc_listen_explicit = true;
  {
    app::App d(o);
    EXPECT_EQ(d.bind(), 1);
  }
  // A taken default gRPC address only turns gRPC off: the file is then named after HTTP.
  o.grpc_listen_explicit = false;
  {
    RunningApp d(o);
    ASSERT_EQ(d.app().grpcPort(), 0);
    const std::string file_d =
        runtime.path() + "/epmdx/admin-" + std::to_string(d.app().httpPort()) + ".token";
    EXPECT_NE(file_d, file_c);
    EXPECT_EQ(httpStatus(d.app().httpPort(), "Bearer " + firstLine(file_d)), 200);
  }
  EXPECT_EQ(firstLine(file_c), token_c);
  EXPECT_EQ(httpStatus(c.app().httpPort(), "Bearer " + token_c), 200);
  EXPECT_EQ(httpStatus(a.app().httpPort(), "Bearer " + token), 200);
}

TEST(DaemonTokens, HttpOnlyDaemonNamesItsFileAfterTheHttpPort) {
  TempDir runtime;
  setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  unsetenv("EPMDX_TOKEN_FILE");
  auto o = closedReads();
  o.token_out.clear();
  o.grpc_listen = "off";
  RunningApp a(o);
  const std::string file =
      runtime.path() + "/epmdx/admin-" + std::to_string(a.app().httpPort()) + ".token";
  EXPECT_EQ(httpStatus(a.app().httpPort(), "Bearer " + firstLine(file)), 200);
}

TEST(DaemonTokens, BothAdminServersOffWriteNoFile) {
  TempDir runtime;
  setenv("XDG_RUNTIME_DIR", runtime.path().c_str(), 1);
  auto o = RunningApp::testOptions();
  o.token_out.clear();
  o.grpc_listen = "off";
  o.http_listen = "off";
  ::testing::internal::CaptureStderr();
  { RunningApp a(o); }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(fs::is_empty(runtime.path()));
  EXPECT_NE(log.find("no admin token"), std::string::npos) << log;
}

TEST(DaemonTokens, ASymlinkAtTheTokenFileStopsTheStartAndIsNotFollowed) {
  TempDir dir;
  const std::string victim = dir.file("victim");
  writeFile(victim, "precious\n", 0644);
  auto o = RunningApp::testOptions();
  o.token_out = dir.file("admin.token");
  ASSERT_EQ(symlink(victim.c_str(), o.token_out.c_str()), 0);
  app::App a(o);
  EXPECT_EQ(a.bind(), 1);
  EXPECT_EQ(firstLine(victim), "precious");
  struct stat st {};
  ASSERT_EQ(stat(victim.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

// Two tokens on one broken line: the old code quoted the second as an "unknown scope".
constexpr const char* kSecretA = "s3cret-token-AAAAAAAAAAAAAAAA";
constexpr const char* kSecretB = "s3cret-token-BBBBBBBBBBBBBBBB";

std::string brokenTokensFile() {
  return std::string("good-token read\n") + kSecretA + " " + kSecretB + " read evict\n";
}

void expectNoSecret(const std::string& log) {
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
  EXPECT_EQ(log.find("good-token"), std::string::npos) << log;
}

TEST(SecretsInLogs, AFailedStartNeverLogsAToken) {
  TempDir dir;
  auto o = RunningApp::testOptions();
  o.tokens_file = dir.file("tokens");
  writeFile(o.tokens_file, brokenTokensFile());
  ::testing::internal::CaptureStderr();
  {
    app::App a(o);
    EXPECT_EQ(a.bind(), 1);
  }
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("line 2: field 2 is not a scope"), std::string::npos) << log;
  expectNoSecret(log);
}

TEST(SecretsInLogs, AFailedReloadNeverLogsATokenAndKeepsTheOldTokens) {
  TempDir dir;
  auto o = closedReads();
  o.tokens_file = dir.file("tokens");
  writeFile(o.tokens_file, "good-token read\n");
  RunningApp a(o);
  writeFile(o.tokens_file, brokenTokensFile());
  ::testing::internal::CaptureStderr();
  a.app().reloadTokens();  // What SIGHUP does.
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("tokens not reloaded"), std::string::npos) << log;
  EXPECT_NE(log.find("line 2"), std::string::npos) << log;
  expectNoSecret(log);
  EXPECT_EQ(httpStatus(a.app().httpPort(), "Bearer good-token"), 200);
  EXPECT_EQ(httpStatus(a.app().httpPort(), std::string("Bearer ") + kSecretA), 401);
}

TEST(SecretsInLogs, ATokensFileOthersCanReadIsWarnedAboutAtStartAndReload) {
  TempDir dir;
  auto o = closedReads();
  o.tokens_file = dir.file("tokens");
  writeFile(o.tokens_file, "good-token read\n", 0644);
  ::testing::internal::CaptureStderr();
  auto a = std::make_unique<RunningApp>(o);
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("readable by group or others"), std::string::npos) << log;
  EXPECT_NE(log.find(o.tokens_file), std::string::npos) << log;
  EXPECT_NE(log.find("0644"), std::string::npos) << log;
  // Warned, not refused (Kubernetes Secret volumes are 0644 by default).
  EXPECT_EQ(httpStatus(a->app().httpPort(), "Bearer good-token"), 200);

  chmod(o.tokens_file.c_str(), 0604);
  ::testing::internal::CaptureStderr();
  a->app().reloadTokens();
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("readable by group or others"), std::string::npos) << log;
  EXPECT_NE(log.find("0604"), std::string::npos) << log;
  EXPECT_NE(log.find("tokens reloaded"), std::string::npos) << log;

  // Private, or shared only with a group of the daemon's own (the file is ours: our group).
  for (const mode_t mode : {0600, 0640, 0440}) {
    chmod(o.tokens_file.c_str(), mode);
    ::testing::internal::CaptureStderr();
    a->app().reloadTokens();
    log = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(log.find("readable by group or others"), std::string::npos) << log;
    EXPECT_NE(log.find("tokens reloaded"), std::string::npos) << log;
    expectNoSecret(log);
  }
  chmod(o.tokens_file.c_str(), 0600);
}

TEST(SecretsInLogs, ATokensFileAForeignGroupCanReadIsWarnedAbout) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to give a file to another group";
  }
  TempDir dir;
  const std::string path = dir.file("tokens");
  writeFile(path, "good-token read\n", 0640);
  ASSERT_EQ(chown(path.c_str(), 0, 12345), 0);
  TokenStore s;
  ::testing::internal::CaptureStderr();
  EXPECT_FALSE(s.loadFile(path).has_value());
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("readable by group or others"), std::string::npos) << log;
  EXPECT_NE(log.find("group=12345"), std::string::npos) << log;
  expectNoSecret(log);
}

}  // namespace
}  // namespace epmdx::api
