// epmdx-fleet's source discovery against real DNS servers: DnsResolver (c-ares) against a
// real dnsmasq (A, AAAA, SRV with its additional section, NXDOMAIN, REFUSED, a stopped
// server, records changed under it) and against a scripted UDP server for the answers
// dnsmasq will not give (SERVFAIL for one family only, a malformed answer, SRV without an
// additional section); parseDnsQuery, parseDnsServer and readSourcesFile on good and bad
// input. The rule under test throughout: a failed lookup is never an empty answer.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <thread>

#include "server/fleet/dns_resolver.h"
#include "server/fleet/sources_file.h"
#include "tests/support/dnsmasq.h"
#include "tests/support/net.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using fleet::DnsAnswer;
using fleet::DnsQuery;
using fleet::DnsResolver;
using Strings = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

DnsQuery query(const std::string& text) {
  auto q = fleet::parseDnsQuery(text);
  EXPECT_TRUE(q.ok()) << text << ": " << (q.ok() ? "" : q.error());
  return q.ok() ? q.value() : DnsQuery{};
}

// ---- A scripted DNS server: one UDP socket, a reply per question from the test's handler.

struct DnsQuestion {
  std::string name;  // "app.test", lower case as sent.
  int type = 0;
  std::string raw;  // The question section as received (echoed in replies).
  std::string id;   // Two bytes.
};

std::string u16(unsigned v) {
  return std::string{static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

std::string labels(const std::string& name) {
  std::string out;
  for (size_t start = 0; start < name.size();) {
    auto dot = name.find('.', start);
    dot = dot == std::string::npos ? name.size() : dot;
    out += static_cast<char>(dot - start);
    out += name.substr(start, dot - start);
    start = dot + 1;
  }
  return out + '\0';
}

/// A record owned by the question's name (a pointer to offset 12), TTL 0.
std::string record(int type, const std::string& rdata) {
  return "\xc0\x0c" + u16(type) + u16(1) + std::string(4, '\0') + u16(rdata.size()) + rdata;
}
std::string aRecord(const std::string& ip) {
  in_addr a{};
  inet_pton(AF_INET, ip.c_str(), &a);
  return record(1, std::string(reinterpret_cast<const char*>(&a), 4));
}
std::string aaaaRecord(const std::string& ip) {
  in6_addr a{};
  inet_pton(AF_INET6, ip.c_str(), &a);
  return record(28, std::string(reinterpret_cast<const char*>(&a), 16));
}
std::string srvRecord(const std::string& target, uint16_t port) {
  return record(33, u16(0) + u16(0) + u16(port) + labels(target));
}

/// A whole reply: rcode, the answer records (`count` of them, `records` their bytes).
std::string reply(const DnsQuestion& q, int rcode, int count = 0, const std::string& records = "") {
  return q.id + u16(0x8180 | rcode) + u16(1) + u16(count) + u16(0) + u16(0) + q.raw + records;
}

class ScriptedDns {
 public:
  /// `answer` returns the reply's bytes, or "" to stay silent.
  explicit ScriptedDns(std::function<std::string(const DnsQuestion&)> answer)
      : answer_(std::move(answer)) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      throw std::runtime_error("cannot bind the scripted DNS server");
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedDns() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int questions() const { return questions_.load(); }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) {
        continue;  // Wakes to see stop_.
      }
      char buf[1500];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 17) {
        continue;
      }
      const std::string msg(buf, static_cast<size_t>(n));
      DnsQuestion q;
      q.id = msg.substr(0, 2);
      size_t at = 12;
      while (at < msg.size() && msg[at] != 0) {
        const auto l = static_cast<size_t>(static_cast<unsigned char>(msg[at]));
        q.name += (q.name.empty() ? "" : ".") + msg.substr(at + 1, l);
        at += l + 1;
      }
      if (at + 5 > msg.size()) {
        continue;
      }
      q.type =
          static_cast<unsigned char>(msg[at + 1]) << 8 | static_cast<unsigned char>(msg[at + 2]);
      q.raw = msg.substr(12, at + 5 - 12);
      ++questions_;
      const std::string out = answer_(q);
      if (!out.empty()) {
        sendto(fd_, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    }
  }

  std::function<std::string(const DnsQuestion&)> answer_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> questions_{0};
  std::thread thread_;
};

// ---- Against a real dnsmasq.

class DnsDiscoveryTest : public ::testing::Test {
 protected:
  DnsAnswer resolve(const std::string& text, std::chrono::milliseconds timeout = 2s) {
    return DnsResolver(dns_.address(), timeout).resolve(query(text));
  }
  Dnsmasq dns_;
};

TEST_F(DnsDiscoveryTest, AAnswersGetTheQueryPort) {
  dns_.setHosts({{"app.cluster.local", {"10.0.0.7", "10.0.0.8"}}});
  const auto a = resolve("app.cluster.local:4370");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.7:4370", "10.0.0.8:4370"}));
  EXPECT_EQ(a.error, "");
}

TEST_F(DnsDiscoveryTest, AaaaAnswersAreBracketed) {
  dns_.setHosts({{"app6.cluster.local", {"::1", "fd00::7"}}});
  const auto a = resolve("app6.cluster.local:4370");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"[::1]:4370", "[fd00::7]:4370"}));
}

TEST_F(DnsDiscoveryTest, BothFamiliesTogetherInNumericOrder) {
  // 10.0.0.9 before 10.0.0.10 (numbers, not text), IPv4 before IPv6.
  dns_.setHosts({{"dual.cluster.local", {"fd00::1", "10.0.0.10", "10.0.0.9"}}});
  const auto a = resolve("dual.cluster.local:4370");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.9:4370", "10.0.0.10:4370", "[fd00::1]:4370"}));
  const std::string log = dns_.log();
  EXPECT_NE(log.find("query[A] dual.cluster.local"), std::string::npos) << log;
  EXPECT_NE(log.find("query[AAAA] dual.cluster.local"), std::string::npos) << log;
}

TEST_F(DnsDiscoveryTest, AnAbsoluteNameAnswersTheSame) {
  dns_.setHosts({{"app.cluster.local", {"10.0.0.7"}}});
  const auto a = resolve("app.cluster.local.:4370");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.7:4370"}));
}

TEST_F(DnsDiscoveryTest, ChangedRecordsAreSeenAtTheNextLookup) {
  dns_.setHosts({{"app.cluster.local", {"10.0.0.7", "10.0.0.8"}}});
  ASSERT_EQ(resolve("app.cluster.local:4370").addresses,
            (Strings{"10.0.0.7:4370", "10.0.0.8:4370"}));
  dns_.setHosts({{"app.cluster.local", {"10.0.0.8", "10.0.0.9", "fd00::9"}}});
  EXPECT_EQ(resolve("app.cluster.local:4370").addresses,
            (Strings{"10.0.0.8:4370", "10.0.0.9:4370", "[fd00::9]:4370"}));
  dns_.setHosts({});  // Every pod gone: the name itself is gone.
  const auto gone = resolve("app.cluster.local:4370");
  EXPECT_TRUE(gone.ok) << gone.error;
  EXPECT_TRUE(gone.addresses.empty());
}

TEST_F(DnsDiscoveryTest, NxdomainIsAnAnswerWithoutAddresses) {
  dns_.setHosts({{"app.cluster.local", {"10.0.0.7"}}});
  const auto a = resolve("nothing-here.cluster.local:4370");
  EXPECT_TRUE(a.ok) << a.error;
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_EQ(a.error, "");
  EXPECT_NE(dns_.log().find("nothing-here.cluster.local is NXDOMAIN"), std::string::npos)
      << dns_.log();
}

TEST_F(DnsDiscoveryTest, AStoppedServerIsAFailedLookupWithinTheTimeout) {
  dns_.setHosts({{"app.cluster.local", {"10.0.0.7"}}});
  ASSERT_TRUE(resolve("app.cluster.local:4370").ok);
  dns_.pause();
  const auto start = Clock::now();
  const auto a = resolve("app.cluster.local:4370", 600ms);
  const auto took = Clock::now() - start;
  dns_.resume();
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_NE(a.error.find("timeout after 600 ms from " + dns_.address()), std::string::npos)
      << a.error;
  EXPECT_GE(took, 300ms);   // It did wait for the server (two tries),
  EXPECT_LT(took, 1500ms);  // and no longer than asked (plus scheduling on a busy machine).
  // The same question once it runs again: the failure was the stop, not the name.
  const auto again = resolve("app.cluster.local:4370");
  EXPECT_TRUE(again.ok) << again.error;
  EXPECT_EQ(again.addresses, (Strings{"10.0.0.7:4370"}));
}

TEST_F(DnsDiscoveryTest, ANameOutsideItsZoneIsRefusedAndFails) {
  const auto a = resolve("app.example:4370");
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_NE(a.error.find("REFUSED from " + dns_.address()), std::string::npos) << a.error;
}

TEST_F(DnsDiscoveryTest, SrvGivesEachTargetWithItsPortFromTheAdditionalSection) {
  dns_.setHosts({{"pod-a.cluster.local", {"10.0.0.8"}}, {"pod-b.cluster.local", {"10.0.0.9"}}});
  dns_.setSrv({{"_grpc._tcp.app.cluster.local",
                {{"pod-a.cluster.local", 4370}, {"pod-b.cluster.local", 4380}}}});
  const auto a = resolve("_grpc._tcp.app.cluster.local");
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.8:4370", "10.0.0.9:4380"}));
  // dnsmasq sent the targets' addresses with the SRV answer: nothing else was asked.
  const std::string log = dns_.log();
  EXPECT_NE(log.find("query[SRV] _grpc._tcp.app.cluster.local"), std::string::npos) << log;
  EXPECT_EQ(log.find("query[A] pod-a"), std::string::npos) << log;
}

TEST_F(DnsDiscoveryTest, SrvAsksForTargetsItWasNotGiven) {
  dns_.setHosts({{"pod-a.cluster.local", {"10.0.0.8"}}});
  dns_.setSrv({{"_grpc._tcp.app.cluster.local",
                {{"pod-a.cluster.local", 4370}, {"pod-c.cluster.local", 4390}}}});
  const auto a = resolve("_grpc._tcp.app.cluster.local");
  ASSERT_TRUE(a.ok) << a.error;
  // pod-c has no address (NXDOMAIN: a pod whose record is not there yet): no address, no
  // failure; pod-a's comes as before.
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.8:4370"}));
  const std::string log = dns_.log();
  EXPECT_NE(log.find("query[A] pod-c.cluster.local"), std::string::npos) << log;
  EXPECT_NE(log.find("query[AAAA] pod-c.cluster.local"), std::string::npos) << log;
}

TEST_F(DnsDiscoveryTest, SrvOfAnUnknownServiceIsAnEmptyAnswer) {
  const auto a = resolve("_grpc._tcp.none.cluster.local");
  EXPECT_TRUE(a.ok) << a.error;
  EXPECT_TRUE(a.addresses.empty());
}

TEST_F(DnsDiscoveryTest, AThousandAndTwentyFourAddressesComeWholeOneMoreFails) {
  std::vector<std::string> ips;
  for (int i = 0; i < 1025; ++i) {
    ips.push_back("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  }
  dns_.setHosts({{"big.cluster.local", std::vector<std::string>(ips.begin(), ips.end() - 1)},
                 {"huge.cluster.local", ips}});
  const auto big = resolve("big.cluster.local:4370");  // 16 KiB: over TCP after a truncation.
  ASSERT_TRUE(big.ok) << big.error;
  EXPECT_EQ(big.addresses.size(), fleet::kMaxDnsAddresses);
  EXPECT_EQ(big.addresses.front(), "10.1.0.0:4370");
  EXPECT_EQ(big.addresses.back(), "10.1.3.255:4370");
  const auto huge = resolve("huge.cluster.local:4370");
  EXPECT_FALSE(huge.ok);  // Never the first 1024 of 1025: the last one would look gone.
  EXPECT_TRUE(huge.addresses.empty());
  EXPECT_NE(huge.error.find("more than 1024"), std::string::npos) << huge.error;
}

TEST_F(DnsDiscoveryTest, OneResolverServesSeveralThreadsAtOnce) {
  dns_.setHosts({{"a.cluster.local", {"10.0.0.1"}}, {"b.cluster.local", {"fd00::2"}}});
  const DnsResolver resolver(dns_.address(), 2s);
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const bool a = (t + i) % 2 == 0;
        const auto answer = resolver.resolve(query(a ? "a.cluster.local:1" : "b.cluster.local:2"));
        if (answer.ok && answer.addresses == (a ? Strings{"10.0.0.1:1"} : Strings{"[fd00::2]:2"})) {
          ++right;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(right.load(), 100);
}

// ---- Servers that fail.

TEST(DnsFailures, NothingListeningIsAFailedLookup) {
  const uint16_t port = freePort();  // Nothing there: the kernel answers "port unreachable".
  const auto start = Clock::now();
  const auto a =
      DnsResolver("127.0.0.1:" + std::to_string(port), 2s).resolve(query("app.cluster.local:1"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_FALSE(a.error.empty());
  EXPECT_NE(a.error.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << a.error;
  EXPECT_LT(Clock::now() - start, 2500ms);
}

TEST(DnsFailures, ServfailForOneFamilyFailsTheWholeLookup) {
  // A answers, AAAA fails: the IPv4 addresses alone would drop every IPv6-only daemon.
  ScriptedDns dns([](const DnsQuestion& q) {
    return q.type == 1 ? reply(q, 0, 1, aRecord("10.0.0.7")) : reply(q, 2);
  });
  const auto a = DnsResolver(dns.address(), 2s).resolve(query("app.test:4370"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_NE(a.error.find("AAAA app.test: SERVFAIL from " + dns.address()), std::string::npos)
      << a.error;
}

TEST(DnsFailures, NodataForOneFamilyIsFine) {
  ScriptedDns dns([](const DnsQuestion& q) {
    return q.type == 1 ? reply(q, 0, 1, aRecord("10.0.0.7")) : reply(q, 0);  // AAAA: NODATA.
  });
  const auto a = DnsResolver(dns.address(), 2s).resolve(query("app.test:4370"));
  EXPECT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.7:4370"}));
  EXPECT_EQ(dns.questions(), 2);
}

TEST(DnsFailures, AMalformedAnswerFails) {
  // NOERROR, one answer announced, its record cut off after the name.
  ScriptedDns dns([](const DnsQuestion& q) { return reply(q, 0, 1, "\xc0\x0c\x00"); });
  const auto a = DnsResolver(dns.address(), 2s).resolve(query("app.test:4370"));
  EXPECT_FALSE(a.ok);
  EXPECT_TRUE(a.addresses.empty());
  EXPECT_NE(a.error.find("malformed answer"), std::string::npos) << a.error;
}

TEST(DnsFailures, SrvTargetsAreAskedForAndAnyFailureFailsTheLookup) {
  // No additional section: the resolver asks each target; pod-b's AAAA fails.
  std::atomic<bool> b_fails{false};
  ScriptedDns dns([&](const DnsQuestion& q) {
    if (q.type == 33) {
      return reply(q, 0, 2, srvRecord("pod-a.test", 4370) + srvRecord("pod-b.test", 4380));
    }
    if (q.name == "pod-a.test") {
      return q.type == 1 ? reply(q, 0, 1, aRecord("10.0.0.8")) : reply(q, 0);
    }
    if (q.name == "pod-b.test" && q.type == 28) {
      return b_fails ? reply(q, 2) : reply(q, 0, 1, aaaaRecord("fd00::9"));
    }
    return reply(q, 0);
  });
  const DnsResolver resolver(dns.address(), 2s);
  const auto a = resolver.resolve(query("_grpc._tcp.app.test"));
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_EQ(a.addresses, (Strings{"10.0.0.8:4370", "[fd00::9]:4380"}));
  b_fails = true;
  const auto b = resolver.resolve(query("_grpc._tcp.app.test"));
  EXPECT_FALSE(b.ok);
  EXPECT_TRUE(b.addresses.empty());
  EXPECT_NE(b.error.find("AAAA pod-b.test.: SERVFAIL"), std::string::npos) << b.error;
}

TEST(DnsFailures, ABadServerFailsEveryLookupSayingWhy) {
  const auto a = DnsResolver("dns.internal:53", 1s).resolve(query("app.test:1"));
  EXPECT_FALSE(a.ok);
  EXPECT_NE(a.error.find("dns.internal"), std::string::npos) << a.error;
}

// ---- Parsing the flags.

TEST(DnsQueryParse, AcceptsNamePortAndServiceNames) {
  auto a = fleet::parseDnsQuery("app-headless.default.svc.cluster.local:4370");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().name, "app-headless.default.svc.cluster.local");
  EXPECT_EQ(a.value().port, 4370);
  EXPECT_EQ(a.value().text(), "app-headless.default.svc.cluster.local:4370");
  auto srv = fleet::parseDnsQuery("_grpc._tcp.app-headless.default.svc.cluster.local");
  ASSERT_TRUE(srv.ok());
  EXPECT_EQ(srv.value().port, 0);
  EXPECT_EQ(srv.value().text(), "_grpc._tcp.app-headless.default.svc.cluster.local");
  EXPECT_TRUE(fleet::parseDnsQuery("epmdx:65535").ok());
  EXPECT_TRUE(fleet::parseDnsQuery("app.cluster.local.:1").ok());
  EXPECT_TRUE(fleet::parseDnsQuery("_epmdx._tcp.app.").ok());
}

TEST(DnsQueryParse, RejectsWhatIsNotAQuerySayingWhy) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},
      {"app.cluster.local", "has no port"},
      {"app:0", "port 0"},
      {"app:70000", "port 70000"},
      {"app:", "no port after ':'"},
      {"app:http", "no port"},
      {":4370", "empty"},
      {"_x", "not _service._proto.NAME"},
      {"_grpc._tcp", "not _service._proto.NAME"},
      {"_grpc.app.local", "not _service._proto.NAME"},
      {"_grpc._tcp.app:4370", "SRV"},
      {"a..b:1", "empty label"},
      {"app local:1", "letters, digits"},
      {"10.0.0.7:4370", "address"},
      {"[::1]:4370", "address"},
      {std::string(64, 'a') + ".b:1", "63"},
  };
  for (const auto& [text, why] : bad) {
    const auto q = fleet::parseDnsQuery(text);
    ASSERT_FALSE(q.ok()) << text;
    EXPECT_NE(q.error().find(why), std::string::npos) << text << " -> " << q.error();
  }
}

TEST(DnsServerParse, AddressesOnlyWithPort53ByDefault) {
  EXPECT_EQ(fleet::parseDnsServer("10.96.0.10").value(), "10.96.0.10:53");
  EXPECT_EQ(fleet::parseDnsServer("127.0.0.1:5353").value(), "127.0.0.1:5353");
  EXPECT_EQ(fleet::parseDnsServer("[fd00::10]:53").value(), "[fd00::10]:53");
  EXPECT_EQ(fleet::parseDnsServer("::1").value(), "[::1]:53");
  for (const std::string bad :
       {"", "dns.internal:53", "10.0.0.1:0", "10.0.0.1:", "[::1", "1.2.3:53"}) {
    EXPECT_FALSE(fleet::parseDnsServer(bad).ok()) << bad;
  }
}

// ---- The sources file.

class SourcesFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = "/tmp/epmdx-sources-XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    path_ = dir_ + "/sources.txt";
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  void write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }

  std::string dir_;
  std::string path_;
};

TEST_F(SourcesFileTest, ReadsAddressesInOrderWithoutCommentsOrDuplicates) {
  write(
      "# the fleet\n"
      "\n"
      "  10.0.0.7:4370  \n"
      "node-b.example:4370 # rack 2\n"
      "\t[fd00::7]:4370\r\n"
      "10.0.0.7:4370\n"
      "NODE-B.example:4370\n"
      "   # indented comment\n"
      "node-a.example:4372");  // No newline at the end.
  const auto r = fleet::readSourcesFile(path_);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.value(), (Strings{"10.0.0.7:4370", "node-b.example:4370", "[fd00::7]:4370",
                                "node-a.example:4372"}));
}

TEST_F(SourcesFileTest, AnEmptyFileIsNoSources) {
  write("# nothing yet\n\n");
  const auto r = fleet::readSourcesFile(path_);
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_TRUE(r.value().empty());
}

TEST_F(SourcesFileTest, ABadLineRejectsTheWholeFileNamingTheLine) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a:1\n# ok\nfoo\n", ":3: \"foo\" is not HOST:PORT (no port)"},
      {"a:1\nb:0\n", ":2: \"b:0\" is not HOST:PORT (port 0)"},
      {"a:70000\n", ":1: \"a:70000\" is not HOST:PORT"},
      {"a:1\n\n\na b:1\n", ":4: \"a b:1\" is not HOST:PORT"},
      {"[fd00::zz]:1\n", ":1: \"[fd00::zz]:1\" is not HOST:PORT"},
      {"fd00::7:4370\n", ":1: \"fd00::7:4370\" is not HOST:PORT (no port)"},
      {":4370\n", ":1: \":4370\" is not HOST:PORT"},
  };
  for (const auto& [text, why] : bad) {
    write(text);
    const auto r = fleet::readSourcesFile(path_);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().rfind(path_ + why, 0), 0u) << r.error();
  }
}

TEST_F(SourcesFileTest, AMissingFileADirectoryAndAHugeFileAreErrors) {
  const auto missing = fleet::readSourcesFile(dir_ + "/nope.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), dir_ + "/nope.txt: cannot read: No such file or directory");
  const auto directory = fleet::readSourcesFile(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.error().find("not a regular file"), std::string::npos);
  write(std::string(fleet::kMaxSourcesFileBytes + 1, '#'));
  const auto huge = fleet::readSourcesFile(path_);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().find("larger than"), std::string::npos) << huge.error();
}

}  // namespace
}  // namespace epmdx::testing
