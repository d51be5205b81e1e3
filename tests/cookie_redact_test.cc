// The Erlang cookie never leaves /proc/PID/cmdline: redactCookies() on every form erl and
// Elixir put on a command line, and readProcessDetails() (where the daemon reads it) on a
// procfs laid out by the test.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "server/holder/cookie_redact.h"
#include "server/holder/proc_scan.h"

namespace epmdx::holder {
namespace {

using namespace std::string_literals;

// "a b c" -> "a\0b\0c\0", as the kernel writes argv.
std::string argv(std::initializer_list<std::string> args) {
  std::string out;
  for (const auto& a : args) {
    out += a;
    out.push_back('\0');
  }
  return out;
}

TEST(CookieRedact, SetcookieWithOneValueIsTheCookie) {
  EXPECT_EQ(redactCookies(argv({"beam.smp", "-sname", "a", "-setcookie", "s3cret", "-noshell"})),
            argv({"beam.smp", "-sname", "a", "-setcookie", "[redacted]", "-noshell"}));
}

TEST(CookieRedact, SetcookieNodeCookieKeepsTheNode) {
  EXPECT_EQ(redactCookies(argv({"-setcookie", "b@h", "s3cret", "-eval", "x"})),
            argv({"-setcookie", "b@h", "[redacted]", "-eval", "x"}));
}

// A release's rpc helper: `elixir --hidden --cookie C` puts -hidden next to the cookie.
TEST(CookieRedact, TheNextFlagEndsTheValues) {
  EXPECT_EQ(redactCookies(argv({"-hidden", "-setcookie", "s3cret", "-hidden", "-sname", "rpc"})),
            argv({"-hidden", "-setcookie", "[redacted]", "-hidden", "-sname", "rpc"}));
  // init reads every argument up to the next '-' one ("+X" too); of three, none is shown.
  EXPECT_EQ(redactCookies(argv({"-setcookie", "s3cret", "+P", "100", "-x"})),
            argv({"-setcookie", "[redacted]", "[redacted]", "[redacted]", "-x"}));
}

TEST(CookieRedact, EveryOccurrenceAndTheLastArgument) {
  // ERL_FLAGS and -args_file reach beam.smp's argv between "--" markers, after erl's own.
  EXPECT_EQ(redactCookies(argv({"-setcookie", "one", "--", "-setcookie", "two", "--"})),
            argv({"-setcookie", "[redacted]", "--", "-setcookie", "[redacted]", "--"}));
  EXPECT_EQ(redactCookies(argv({"-sname", "a", "-setcookie", "last"})),
            argv({"-sname", "a", "-setcookie", "[redacted]"}));
}

TEST(CookieRedact, CookiesWithSpacesOrNothingAndBareFlags) {
  EXPECT_EQ(redactCookies(argv({"-setcookie", "a b c", "-x"})),
            argv({"-setcookie", "[redacted]", "-x"}));
  EXPECT_EQ(redactCookies(argv({"-setcookie", "", "-x"})),
            argv({"-setcookie", "[redacted]", "-x"}));
  // No value: nothing to hide, and the next flag is left alone (init reads no value either).
  EXPECT_EQ(redactCookies(argv({"-setcookie", "-sname", "a"})),
            argv({"-setcookie", "-sname", "a"}));
  EXPECT_EQ(redactCookies(argv({"-setcookie"})), argv({"-setcookie"}));
}

TEST(CookieRedact, ElixirsLauncherFlags) {
  EXPECT_EQ(redactCookies(argv({"elixir", "--cookie", "s3cret", "--sname", "a"})),
            argv({"elixir", "--cookie", "[redacted]", "--sname", "a"}));
  EXPECT_EQ(redactCookies(argv({"elixir", "--cookie=s3cret"})),
            argv({"elixir", "--cookie=[redacted]"}));
  EXPECT_EQ(redactCookies(argv({"x", "--cookie", "-dashed"})),
            argv({"x", "--cookie", "[redacted]"}));
}

TEST(CookieRedact, OtherCommandLinesAreUntouched) {
  for (const std::string& s :
       {argv({"/usr/bin/sleep", "100"}), ""s, argv({"-setcookiex", "v", "-cookie", "v"}),
        "no-trailing-nul"s, argv({"-sname", "setcookie"})}) {
    EXPECT_EQ(redactCookies(s), s);
  }
  EXPECT_EQ(redactCookies("-setcookie\0abc"s), "-setcookie\0[redacted]"s);
}

// The daemon's one reader of command lines redacts: what HolderProcess.command_line carries
// (and every API, the page, epmdxctl and the audit file show) has no cookie.
TEST(CookieRedact, ReadProcessDetailsRedacts) {
  const std::string root = "/tmp/cookie-redact-proc-" + std::to_string(getpid());
  std::filesystem::create_directories(root + "/4242");
  std::ofstream(root + "/4242/status") << "Name:\tbeam.smp\nUid:\t1000\t1000\t1000\t1000\n";
  std::ofstream(root + "/4242/cmdline", std::ios::binary)
      << argv({"/usr/lib/erlang/erts/bin/beam.smp", "--", "-sname", "a", "-setcookie", "b@h",
               "s3cret", "-setcookie", "t0p", "-extra", "--cookie=x"});
  ProcessInfo info;
  readProcessDetails(4242, info, root);
  std::filesystem::remove_all(root);
  EXPECT_EQ(info.command_line,
            "/usr/lib/erlang/erts/bin/beam.smp -- -sname a -setcookie b@h [redacted] -setcookie "
            "[redacted] -extra --cookie=[redacted]");
  EXPECT_EQ(info.command_line.find("s3cret"), std::string::npos);
  EXPECT_EQ(info.uid, 1000u);
}

}  // namespace
}  // namespace epmdx::holder
