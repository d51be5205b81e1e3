// The same packets sent to OTP's epmd and to epmdx, each started fresh on an ephemeral
// port with the same flags: replies and close behaviour must match byte for byte. The only
// values normalised are the ones that legitimately differ between two daemons: creation
// (time-based), the epmd port in NAMES/DUMP headers, and descriptor numbers in DUMP.

#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <regex>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

std::string utf8Run(uint32_t first, int count) {
  std::string s;
  for (int i = 0; i < count; ++i) {
    const uint32_t cp = first + static_cast<uint32_t>(i);
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

struct Case {
  std::string name;
  std::vector<std::string> held;    // ALIVE2 bodies registered first, connections kept.
  std::vector<std::string> chunks;  // The probe, written in these pieces.
  bool relaxed = false;
  std::chrono::milliseconds wait = 1500ms;  // How long to watch for the close.
};

class Daemon {
 public:
  /// @param second_cluster epmdx only: serve the port under test as a second cluster
  ///        (--cluster), its default cluster elsewhere: every cluster port must be OTP's.
  Daemon(const std::string& binary, bool relaxed, bool second_cluster = false) : port_(freePort()) {
    const uint16_t main_port = second_cluster ? freePort() : port_;
    std::vector<std::string> argv{binary, "-port", std::to_string(main_port), "-packet_timeout",
                                  "1"};
    if (second_cluster) {
      argv.push_back("--cluster=second=" + std::to_string(port_));
    }
    if (relaxed) {
      argv.push_back("-relaxed_command_check");
    }
    if (binary == epmdxBinary()) {
      argv.push_back("--grpc-listen=off");
      argv.push_back("--http-listen=off");
    }
    unsetenv("ERL_EPMD_RELAXED_COMMAND_CHECK");  // Its mere presence means relaxed.
    proc_ = std::make_unique<Process>(argv);
    ok_ = waitForPort(port_, 5s);
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  std::unique_ptr<Process> proc_;
  bool ok_ = false;
};

std::string normalise(std::string reply, uint16_t port) {
  if (reply.size() == 4 && static_cast<uint8_t>(reply[0]) == 121 && reply[1] == 0) {
    reply.replace(2, 2, "CC");
  }
  if (reply.size() == 6 && static_cast<uint8_t>(reply[0]) == 118 && reply[1] == 0) {
    reply.replace(2, 4, "CCCC");
  }
  const std::string header = bytes({0, 0, port >> 8, port & 0xFF});
  if (reply.rfind(header, 0) == 0) {
    reply.replace(0, 4, "PORT");
  }
  return std::regex_replace(reply, std::regex("fd = [0-9]+"), "fd = N");
}

struct Observed {
  std::string reply;
  bool closed;
  std::string names;  // The NAMES list afterwards (without the port header).
};

Observed observe(const Daemon& d, const Case& c) {
  std::vector<int> held;
  for (const auto& body : c.held) {
    const int fd = connectTo("127.0.0.1", d.port());
    sendAll(fd, frame(body));
    readN(fd, static_cast<uint8_t>(body[6]) >= 6 ? 6 : 4, 2000ms);
    held.push_back(fd);
  }
  const int fd = connectTo("127.0.0.1", d.port());
  for (size_t i = 0; i < c.chunks.size(); ++i) {
    sendAll(fd, c.chunks[i]);
  }
  const Outcome o = readUntilClose(fd, c.wait);
  Observed obs{normalise(o.bytes, d.port()), o.closed, {}};
  close(fd);
  const int n = connectTo("127.0.0.1", d.port());
  if (n >= 0) {
    sendAll(n, frame("n"));
    obs.names = normalise(readUntilClose(n, 2000ms).bytes, d.port());
    close(n);
    if (obs.names.empty()) {
      obs.names = "<not listening>";  // Accepted while exiting (after KILL): same thing.
    }
  } else {
    obs.names = "<not listening>";
  }
  for (int h : held) {
    close(h);
  }
  return obs;
}

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class Differential : public ::testing::TestWithParam<Case> {};

void compareWithOtp(const Case& c, bool second_cluster) {
  Daemon otp(otpEpmdBinary(), c.relaxed);
  Daemon ours(epmdxBinary(), c.relaxed, second_cluster);
  ASSERT_TRUE(otp.ok()) << "OTP's epmd did not start";
  ASSERT_TRUE(ours.ok()) << "epmdx did not start";
  auto theirs = std::async(std::launch::async, [&] { return observe(otp, c); });
  const Observed mine = observe(ours, c);
  const Observed ref = theirs.get();
  EXPECT_EQ(::testing::PrintToString(mine.reply), ::testing::PrintToString(ref.reply));
  EXPECT_EQ(mine.closed, ref.closed);
  EXPECT_EQ(mine.names, ref.names);
}

TEST_P(Differential, SameBytesSameClose) {
  compareWithOtp(GetParam(), false);
}

// A cluster's port (--cluster=NAME=PORT) is OTP's epmd too, byte for byte.
TEST_P(Differential, SameBytesSameCloseOnASecondClusterPort) {
  compareWithOtp(GetParam(), true);
}

std::vector<Case> cases() {
  const std::string foo5 = alive2Body("foo", 1042, 5, 5);
  const std::string foo6 = alive2Body("foo", 1042, 6, 5);
  std::vector<Case> v;
  auto add = [&v](std::string name, std::vector<std::string> held, std::string body,
                  bool relaxed = false) {
    v.push_back(Case{std::move(name), std::move(held), {frame(body)}, relaxed});
  };
  auto raw = [&v](std::string name, std::vector<std::string> chunks,
                  std::chrono::milliseconds wait = 1500ms) {
    v.push_back(Case{std::move(name), {}, std::move(chunks), false, wait});
  };
  // Registration.
  add("alive2_v5", {}, foo5);
  add("alive2_v6", {}, foo6);
  add("alive2_hidden_with_extra", {}, alive2Body("foo", 4711, 6, 5, "extra", 72));
  add("alive2_duplicate_v5", {foo5}, foo5);
  add("alive2_duplicate_v6", {foo6}, foo6);
  add("alive2_duplicate_port_allowed", {foo5}, alive2Body("bar", 1042, 5, 5));
  add("alive2_too_small_1", {}, bytes({120, 0, 1, 77, 0, 0, 5, 0, 5, 0, 0}));
  add("alive2_too_small_2", {}, bytes({120, 0, 1, 77, 0, 0, 5, 0, 5}));
  add("alive2_empty_name_empty_extra", {}, alive2Body("", 1, 5, 5));
  add("alive2_empty_name_with_extra", {}, alive2Body("", 1, 5, 5, "x"));
  add("alive2_name_size_error", {}, alive2Body("foo", 1, 5, 5).substr(0, 12));
  {
    std::string b = alive2Body("gurka", 1, 5, 5);
    b[b.size() - 1] = 10;
    add("alive2_extra_size_error", {}, b);
  }
  add("alive2_nul_inside", {}, alive2Body(std::string("foo\0bar", 7), 1, 5, 5));
  add("alive2_nul_terminated", {}, alive2Body(std::string("foobar\0", 7), 1, 5, 5));
  add("alive2_600_chars", {}, alive2Body(std::string(600, 'a'), 1, 5, 5));
  add("alive2_256_chars", {}, alive2Body(std::string(256, 'a'), 1, 6, 5));
  add("alive2_255_chars", {}, alive2Body(std::string(255, 'a'), 1, 6, 5));
  add("alive2_invalid_utf8", {}, alive2Body("\xC0\x80", 1, 6, 5));
  add("alive2_surrogate", {}, alive2Body("a\xED\xA0\x80", 1, 5, 5));
  add("alive2_unicode_1f608", {}, alive2Body(utf8Run(0x1F608, 1), 4711, 5, 5, "", 72));
  add("alive2_long_unicode_201", {}, alive2Body(utf8Run(0x1F600, 201), 1, 5, 5));
  add("alive2_long_unicode_256", {}, alive2Body(utf8Run(0x1F600, 256), 1, 5, 5));
  add("alive2_extra_1020", {}, alive2Body("gurka", 1, 5, 5, std::string(1020, '\xFF')));
  add("alive2_extra_1021", {}, alive2Body("gurka", 1, 5, 5, std::string(1021, '\xFF')));
  add("alive2_extra_with_nuls", {}, alive2Body("foo", 1, 5, 5, std::string("ABC\0\0", 5)));
  add("alive2_bytes_after_extra", {}, alive2Body("foo", 1, 5, 5, "e") + "trailing");
  add("alive2_version_zero", {}, alive2Body("foo", 1, 0, 0));
  add("alive2_version_65535", {}, alive2Body("foo", 1, 65535, 65535));
  // Lookup.
  add("port2_found", {foo5}, "zfoo");
  add("port2_found_v6_extra", {alive2Body("foo", 4711, 6, 5, std::string("AB\0", 3), 72)}, "zfoo");
  add("port2_not_found", {foo5}, "zbar");
  add("port2_trailing_nul", {foo5}, std::string("zfoo\0", 5));
  add("port2_two_trailing_nuls", {foo5}, std::string("zfoo\0\0", 6));
  add("port2_nul_inside", {foo5}, std::string("zf\0oo", 5));
  add("port2_empty", {}, "z");
  add("port2_only_nul", {}, std::string("z\0", 2));
  add("port2_invalid_utf8", {}, "z\xC3");
  add("port2_254_chars", {alive2Body(std::string(254, 'b'), 7, 5, 5)}, "z" + std::string(254, 'b'));
  add("port2_255_chars", {alive2Body(std::string(255, 'b'), 7, 5, 5)}, "z" + std::string(255, 'b'));
  add("port2_unicode", {alive2Body(utf8Run(0x1F608, 1), 4711, 5, 5, "", 72)},
      "z" + utf8Run(0x1F608, 1));
  add("port2_prefix_is_not_a_match", {foo5}, "zfo");
  // Names and dump.
  add("names_empty", {}, "n");
  add("names_two", {foo5, alive2Body("bar", 7, 5, 5)}, "n");
  add("names_trailing_bytes", {foo5}, "nxyz");
  add("dump", {foo5, alive2Body("bar", 7, 6, 5)}, "d");
  // Kill and stop.
  add("kill_with_live_nodes", {foo5}, "k");
  add("stop_not_relaxed", {foo5}, "sfoo");
  add("stop_relaxed", {foo5}, "sfoo", true);
  add("stop_relaxed_noexist", {foo5}, "sxxx42", true);
  add("stop_relaxed_empty", {foo5}, "s", true);
  add("stop_relaxed_nul_cut", {foo5}, std::string("sfoo\0zz", 7), true);
  add("kill_relaxed_with_live_nodes", {foo5}, "k", true);
  add("kill_empty", {}, "k");
  // Garbage and framing.
  add("unknown_a", {}, "a");
  add("unknown_p", {}, "pfoo");
  add("unknown_zero", {}, bytes({0}));
  add("unknown_ff", {}, bytes({255, 1, 2}));
  raw("zero_length", {std::string(10, '\0')});
  raw("too_large", {bytes({0xF6, 0x18}) + std::string(3000, 'z')});
  raw("len_3058", {bytes({0x0B, 0xF2}) + "n"});
  raw("len_3057_names", {bytes({0x0B, 0xF1}) + "n" + std::string(3056, 'x')});
  raw("extra_bytes_in_first_read", {frame("n") + "junk"});
  raw("header_then_body", {bytes({0, 1}), "n"});
  raw("partial_packet", {bytes({0, 100}) + "only a few bytes"}, 4000ms);
  raw("no_data", {}, 4000ms);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Otp, Differential, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// A registration ends when its connection sends anything, on both.
TEST(DifferentialScenario, DataOnRegisteredConnectionUnregisters) {
  for (const auto& bin : {otpEpmdBinary(), epmdxBinary()}) {
    Daemon d(bin, false);
    ASSERT_TRUE(d.ok());
    const int fd = connectTo("127.0.0.1", d.port());
    sendAll(fd, frame(alive2Body("foo", 1, 5, 5)));
    ASSERT_EQ(readN(fd, 4, 2000ms).size(), 4u);
    sendAll(fd, "x");
    EXPECT_TRUE(readUntilClose(fd, 2000ms).closed) << bin;
    close(fd);
    const int n = connectTo("127.0.0.1", d.port());
    sendAll(n, frame("n"));
    EXPECT_EQ(readUntilClose(n, 2000ms).bytes.size(), 4u) << bin;
    close(n);
  }
}

// Re-registering a name bumps its creation by exactly one, on both (v6: 32-bit creation).
TEST(DifferentialScenario, CreationBumpsOnReRegistration) {
  for (const auto& bin : {otpEpmdBinary(), epmdxBinary()}) {
    Daemon d(bin, false);
    ASSERT_TRUE(d.ok());
    std::vector<uint32_t> creations;
    for (int i = 0; i < 3; ++i) {
      const int fd = connectTo("127.0.0.1", d.port());
      sendAll(fd, frame(alive2Body("again", 1, 6, 5)));
      const std::string r = readN(fd, 6, 2000ms);
      ASSERT_EQ(r.size(), 6u);
      creations.push_back((uint32_t(uint8_t(r[2])) << 24) | (uint32_t(uint8_t(r[3])) << 16) |
                          (uint32_t(uint8_t(r[4])) << 8) | uint8_t(r[5]));
      close(fd);
      // The close must land before the next registration: wait until the name is free.
      const auto deadline = std::chrono::steady_clock::now() + 2s;
      for (;;) {
        const int q = connectTo("127.0.0.1", d.port());
        sendAll(q, frame("zagain"));
        const std::string a = readUntilClose(q, 2000ms).bytes;
        close(q);
        if (a == bytes({119, 1}) || std::chrono::steady_clock::now() > deadline) {
          break;
        }
      }
    }
    EXPECT_GE(creations[0], 4u) << bin;
    EXPECT_EQ(creations[1], creations[0] + 1) << bin;
    EXPECT_EQ(creations[2], creations[1] + 1) << bin;
  }
}

}  // namespace
}  // namespace epmdx::testing
