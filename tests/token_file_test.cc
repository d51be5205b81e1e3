// The generated admin token's file: written privately, never through a symlink, adopted
// again only when it is safe to.

#include "server/api/token_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace epmdx::api {
namespace {

namespace fs = std::filesystem;

const std::string kToken(64, 'a');

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

mode_t modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

// A fresh private directory per test, removed afterwards.
class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = "/tmp/epmdx-token-file-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    // Something a planted symlink points at: it must come out of every test untouched.
    victim_ = dir_ + "/victim";
    std::ofstream(victim_) << "precious\n";
    chmod(victim_.c_str(), 0644);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void expectVictimUntouched() {
    EXPECT_EQ(slurp(victim_), "precious\n");
    EXPECT_EQ(modeOf(victim_) & 07777, 0644u);
  }

  std::string dir_;
  std::string victim_;
};

TEST_F(TokenFileTest, WritesAPrivateFileInAPrivateDirectory) {
  const std::string path = dir_ + "/sub/deeper/admin-4370.token";
  ASSERT_FALSE(writeTokenFile(path, kToken).has_value());
  EXPECT_EQ(slurp(path), kToken + "\n");
  EXPECT_EQ(modeOf(path) & 07777, 0600u);
  EXPECT_EQ(modeOf(dir_ + "/sub") & 07777, 0700u);
  EXPECT_EQ(modeOf(dir_ + "/sub/deeper") & 07777, 0700u);
  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ + "/sub/deeper"), fs::directory_iterator()),
            1);
  // Replacing an existing token file is fine.
  const std::string other(64, 'b');
  ASSERT_FALSE(writeTokenFile(path, other).has_value());
  EXPECT_EQ(slurp(path), other + "\n");
}

TEST_F(TokenFileTest, ASymlinkAtTheTemporaryNameIsNotFollowed) {
  const std::string path = dir_ + "/admin.token";
  ASSERT_EQ(symlink(victim_.c_str(), (dir_ + "/planted").c_str()), 0);
  int calls = 0;
  const auto names = [&calls] { return ++calls == 1 ? std::string("planted") : ".tmp-2"; };
  ASSERT_FALSE(writeTokenFile(path, kToken, names).has_value());
  EXPECT_EQ(calls, 2);  // The planted name was tried, refused, and another one used.
  expectVictimUntouched();
  EXPECT_TRUE(S_ISLNK(modeOf(dir_ + "/planted")));
  EXPECT_EQ(slurp(path), kToken + "\n");
  EXPECT_EQ(modeOf(path) & 07777, 0600u);
}

TEST_F(TokenFileTest, OnlySymlinksAtEveryTemporaryNameIsAnErrorNotAWrite) {
  ASSERT_EQ(symlink(victim_.c_str(), (dir_ + "/planted").c_str()), 0);
  const auto err = writeTokenFile(dir_ + "/admin.token", kToken, [] { return "planted"; });
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->find(kToken), std::string::npos);
  expectVictimUntouched();
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ + "/admin.token")));
}

TEST_F(TokenFileTest, ASymlinkAtTheTargetIsRefused) {
  const std::string path = dir_ + "/admin.token";
  ASSERT_EQ(symlink(victim_.c_str(), path.c_str()), 0);
  const auto err = writeTokenFile(path, kToken);
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->find("symlink"), std::string::npos) << *err;
  EXPECT_EQ(err->find(kToken), std::string::npos);
  expectVictimUntouched();
  EXPECT_TRUE(S_ISLNK(modeOf(path)));
  std::string why;
  EXPECT_FALSE(readAdoptableTokenFile(path, &why).has_value());
  EXPECT_NE(why.find("symlink"), std::string::npos) << why;
}

TEST_F(TokenFileTest, ADanglingSymlinkAtTheTargetCreatesNothing) {
  const std::string path = dir_ + "/admin.token";
  const std::string where = dir_ + "/would-be-created";
  ASSERT_EQ(symlink(where.c_str(), path.c_str()), 0);
  EXPECT_TRUE(writeTokenFile(path, kToken).has_value());
  EXPECT_FALSE(fs::exists(where));
}

TEST_F(TokenFileTest, ASymlinkedDirectoryIsRefused) {
  const std::string elsewhere = dir_ + "/elsewhere";
  ASSERT_EQ(mkdir(elsewhere.c_str(), 0700), 0);
  ASSERT_EQ(symlink(elsewhere.c_str(), (dir_ + "/link").c_str()), 0);
  const auto err = writeTokenFile(dir_ + "/link/admin.token", kToken);
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(fs::is_empty(elsewhere));
}

TEST_F(TokenFileTest, ADirectoryOthersMayWriteToIsRefusedUnlessSticky) {
  const std::string open_dir = dir_ + "/open";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  const auto err = writeTokenFile(open_dir + "/admin.token", kToken);
  ASSERT_TRUE(err.has_value());
  EXPECT_NE(err->find("0777"), std::string::npos) << *err;
  EXPECT_TRUE(fs::is_empty(open_dir));
  ASSERT_EQ(chmod(open_dir.c_str(), 01777), 0);  // As /tmp: others cannot replace our files.
  EXPECT_FALSE(writeTokenFile(open_dir + "/admin.token", kToken).has_value());
}

TEST_F(TokenFileTest, AdoptsOnlyAPrivateRegularFileWithOneToken) {
  const std::string path = dir_ + "/admin.token";
  ASSERT_FALSE(writeTokenFile(path, kToken).has_value());
  std::string why;
  EXPECT_EQ(readAdoptableTokenFile(path, &why), kToken);

  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  EXPECT_FALSE(readAdoptableTokenFile(path, &why).has_value());
  EXPECT_NE(why.find("0640"), std::string::npos) << why;
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);

  const auto adoptable = [&](const std::string& content) {
    std::ofstream(path, std::ios::trunc) << content;
    return readAdoptableTokenFile(path, &why).has_value();
  };
  EXPECT_TRUE(adoptable(kToken));  // The newline is optional.
  EXPECT_FALSE(adoptable(kToken + "\n" + kToken + "\n"));
  EXPECT_FALSE(adoptable(kToken + " read\n"));
  EXPECT_FALSE(adoptable("short\n"));
  EXPECT_FALSE(adoptable(""));
  EXPECT_FALSE(adoptable(std::string(300, 'x')));
  EXPECT_EQ(why.find(std::string(40, 'x')), std::string::npos);  // Content is never quoted.

  EXPECT_FALSE(readAdoptableTokenFile(dir_ + "/missing", &why).has_value());
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(readAdoptableTokenFile(fifo, &why).has_value());  // And does not hang.
  EXPECT_FALSE(readAdoptableTokenFile(dir_, &why).has_value());
}

TEST_F(TokenFileTest, AFileOwnedBySomeoneElseIsNotAdopted) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to give a file away";
  }
  const std::string path = dir_ + "/admin.token";
  ASSERT_FALSE(writeTokenFile(path, kToken).has_value());
  ASSERT_EQ(chown(path.c_str(), 12345, 12345), 0);
  std::string why;
  EXPECT_FALSE(readAdoptableTokenFile(path, &why).has_value());
  EXPECT_NE(why.find("12345"), std::string::npos) << why;
}

TEST(TokenFormat, WellFormedTokens) {
  EXPECT_TRUE(wellFormedToken(std::string(32, 'a')));
  EXPECT_TRUE(wellFormedToken(std::string(256, 'Z')));
  EXPECT_TRUE(wellFormedToken("abcDEF0123456789-._~+/abcdefghij=="));
  EXPECT_FALSE(wellFormedToken(std::string(31, 'a')));
  EXPECT_FALSE(wellFormedToken(std::string(257, 'a')));
  EXPECT_FALSE(wellFormedToken(std::string(32, 'a') + " "));
  EXPECT_FALSE(wellFormedToken(std::string(32, '=')));
  EXPECT_FALSE(wellFormedToken(std::string(16, 'a') + "=" + std::string(16, 'a')));
  EXPECT_FALSE(wellFormedToken(std::string(31, 'a') + "\xC3"));
  const std::string a = randomToken();
  const std::string b = randomToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_TRUE(wellFormedToken(a));
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace epmdx::api
