#include "server/api/auth.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

namespace epmdx::api {
namespace {

std::string tmpPath(const std::string& tag) {
  return "/tmp/epmdx-auth-test-" + std::to_string(getpid()) + "-" + tag;
}

TEST(TokenStore, FileScopesIdentitiesAndReload) {
  const std::string path = tmpPath("tokens");
  std::ofstream(path) << "# comment\n\nrw read evict name=ops\nro read  # dashboards\n";
  TokenStore s;
  ASSERT_FALSE(s.init(path, "").has_value());
  Principal who;
  EXPECT_EQ(s.check("Bearer rw", Scope::Evict, &who), TokenStore::Check::Ok);
  EXPECT_EQ(who.identity, "ops");
  EXPECT_EQ(s.check("Bearer ro", Scope::Read, &who), TokenStore::Check::Ok);
  EXPECT_EQ(who.identity, "token-4");
  EXPECT_EQ(s.check("Bearer ro", Scope::Evict), TokenStore::Check::PermissionDenied);
  EXPECT_EQ(s.check("Bearer nope", Scope::Read), TokenStore::Check::Unauthenticated);
  EXPECT_EQ(s.check("", Scope::Read), TokenStore::Check::Unauthenticated);
  EXPECT_EQ(s.check("Basic rw", Scope::Read), TokenStore::Check::Unauthenticated);
  EXPECT_EQ(s.check("Bearer ", Scope::Read), TokenStore::Check::Unauthenticated);
  std::ofstream(path) << "new read\n";
  ASSERT_FALSE(s.reload().has_value());
  EXPECT_EQ(s.check("Bearer rw", Scope::Read), TokenStore::Check::Unauthenticated);
  EXPECT_EQ(s.check("Bearer new", Scope::Read), TokenStore::Check::Ok);
  // A broken file keeps the old tokens.
  std::ofstream(path) << "bad wrongscope\n";
  EXPECT_TRUE(s.reload().has_value());
  EXPECT_EQ(s.check("Bearer new", Scope::Read), TokenStore::Check::Ok);
  unlink(path.c_str());
}

TEST(TokenStore, GeneratedAdminTokenIsPrivate) {
  const std::string dir = tmpPath("dir");
  const std::string path = dir + "/sub/admin.token";
  TokenStore s;
  ASSERT_FALSE(s.init("", path).has_value());
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string token = readTokenFile(path);
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(s.check("Bearer " + token, Scope::Evict), TokenStore::Check::Ok);
  unlink(path.c_str());
  rmdir((dir + "/sub").c_str());
  rmdir(dir.c_str());
}

TEST(TokenStore, MissingFileIsAnError) {
  TokenStore s;
  EXPECT_TRUE(s.init("/nonexistent/tokens", "").has_value());
}

}  // namespace
}  // namespace epmdx::api
