// Who may ask a cluster's epmd port: the rules, the codec's decision, the
// directives, and the listener closing refused requests without a reply (OTP's refusal),
// on the fast path too, while loopback keeps working and registrations stay local-only.

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <fstream>

#include "server/app/access_config.h"
#include "server/epmd/access_policy.h"
#include "server/epmd/codec.h"
#include "tests/support/net.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using epmd::PeerRule;

asio::ip::address ip(const char* s) {
  return asio::ip::make_address(s);
}

TEST(PeerRule, AnyLoopbackAndCidrsOfBothFamilies) {
  EXPECT_TRUE(PeerRule::parse("any").value().allows(ip("203.0.113.9")));
  auto loop = PeerRule::parse("loopback").value();
  EXPECT_TRUE(loop.allows(ip("127.0.0.1")));
  EXPECT_TRUE(loop.allows(ip("127.9.9.9")));
  EXPECT_TRUE(loop.allows(ip("::1")));
  EXPECT_TRUE(loop.allows(ip("::ffff:127.0.0.1")));
  EXPECT_FALSE(loop.allows(ip("10.0.0.1")));
  auto nets = PeerRule::parse("10.0.0.0/8,fd00::/8,192.0.2.7").value();
  EXPECT_TRUE(nets.allows(ip("10.200.1.2")));
  EXPECT_TRUE(nets.allows(ip("::ffff:10.1.1.1")));  // IPv4-mapped, as a dual-stack socket sees it.
  EXPECT_TRUE(nets.allows(ip("fd12::1")));
  EXPECT_TRUE(nets.allows(ip("192.0.2.7")));
  EXPECT_FALSE(nets.allows(ip("192.0.2.8")));
  EXPECT_FALSE(nets.allows(ip("11.0.0.1")));
  EXPECT_FALSE(nets.allows(ip("127.0.0.1")));  // Loopback only when named.
  EXPECT_EQ(nets.toString(), "10.0.0.0/8,fd00::/8,192.0.2.7");
  EXPECT_TRUE(PeerRule::parse("10.1.2.3/0").value().allows(ip("8.8.8.8")));
  EXPECT_FALSE(PeerRule::parse("10.1.2.3/0").value().allows(ip("::2")));  // /0 of IPv4 only.
}

TEST(PeerRule, BadRulesSayWhy) {
  EXPECT_NE(PeerRule::parse("").error().find("empty"), std::string::npos);
  EXPECT_NE(PeerRule::parse("10.0.0.0/33").error().find("prefix"), std::string::npos);
  EXPECT_NE(PeerRule::parse("any,loopback").error().find("any"), std::string::npos);
  EXPECT_NE(PeerRule::parse("example.com").error().find("not an address"), std::string::npos);
}

TEST(AccessPolicyCodec, RefusesListingAndLookupsOnlyAsTold) {
  const uint8_t names[] = {110};
  const uint8_t port2[] = {122, 'a'};
  const uint8_t dump[] = {100};
  epmd::Access a;
  a.local_peer = true;
  a.may_list = false;
  EXPECT_EQ(epmd::decodeRequest(names, 1, a).error(), epmd::DecodeError::PolicyRefused);
  EXPECT_EQ(epmd::decodeRequest(dump, 1, a).error(), epmd::DecodeError::PolicyRefused);
  EXPECT_TRUE(epmd::decodeRequest(port2, 2, a).ok());
  a.may_list = true;
  a.may_resolve = false;
  EXPECT_TRUE(epmd::decodeRequest(names, 1, a).ok());
  EXPECT_EQ(epmd::decodeRequest(port2, 2, a).error(), epmd::DecodeError::PolicyRefused);
  // DUMP from a non-local peer stays OTP's refusal, whatever the policy.
  a.local_peer = false;
  a.may_list = true;
  EXPECT_EQ(epmd::decodeRequest(dump, 1, a).error(), epmd::DecodeError::NotLocal);
}

TEST(AccessDirectives, PerClusterEveryClusterAndErrors) {
  const std::vector<std::string> clusters{"default", "blue"};
  auto built = app::buildAccessPolicies(clusters, {{"names-from", "loopback", "--names-from"},
                                                   {"lookups-from", "*=10.0.0.0/8", "x"},
                                                   {"lookups-from", "blue=any", "y"}});
  ASSERT_TRUE(built.ok()) << built.error();
  EXPECT_EQ(built.value()[0].names.toString(), "loopback");
  EXPECT_EQ(built.value()[1].names.toString(), "any");
  EXPECT_EQ(built.value()[0].lookups.toString(), "10.0.0.0/8");
  EXPECT_EQ(built.value()[1].lookups.toString(), "any");  // Later directives win.
  auto unknown = app::buildAccessPolicies(clusters, {{"names-from", "green=any", "f:3"}});
  EXPECT_EQ(unknown.error(), "f:3: no cluster named \"green\"");
  auto bad = app::buildAccessPolicies(clusters, {{"lookups-from", "10.0.0.0/99", "f:4"}});
  EXPECT_NE(bad.error().find("f:4:"), std::string::npos);
}

/// A daemon whose loopback clients are "outsiders" for the rule under test.
class AccessPolicyListenerTest : public ::testing::Test {
 protected:
  void start(std::vector<app::AccessDirective> access) {
    auto o = RunningApp::testOptions();
    o.access = std::move(access);
    app_ = std::make_unique<RunningApp>(o);
  }
  Outcome ask(const std::string& body) {
    const int fd = connectTo("127.0.0.1", app_->port());
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(sendAll(fd, frame(body)));
    auto out = readUntilClose(fd, 3s);
    close(fd);
    return {out.bytes, out.closed, out.reset};
  }
  std::string metrics() {
    httplib::Client cli("127.0.0.1", app_->app().httpPort());
    auto r = cli.Get("/metrics");
    return r ? r->body : "";
  }
  std::unique_ptr<RunningApp> app_;
};

TEST_F(AccessPolicyListenerTest, RefusedRequestsCloseWithoutReplyAndAreCounted) {
  // Loopback is excluded here on purpose: the test's own client is the outsider.
  start({{"names-from", "192.0.2.0/24", "t"}, {"lookups-from", "192.0.2.0/24", "t"}});
  const int held = connectTo("127.0.0.1", app_->port());
  ASSERT_TRUE(sendAll(held, frame(alive2Body("inside", 4242))));  // ALIVE2: local-only, allowed.
  ASSERT_EQ(readN(held, 2, 3s), bytes({118, 0}));
  for (const auto& body : {bytes({110}), bytes({122}) + "inside"}) {
    const auto out = ask(body);
    EXPECT_TRUE(out.closed);
    EXPECT_EQ(out.bytes, "");  // No reply, as OTP refuses.
  }
  const std::string m = metrics();
  EXPECT_NE(m.find("epmdx_epmd_policy_refused_total{type=\"names\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("epmdx_epmd_policy_refused_total{type=\"port_please2\"} 1"), std::string::npos)
      << m;
  close(held);
}

TEST_F(AccessPolicyListenerTest, LoopbackRuleKeepsLocalClientsWorking) {
  start({{"names-from", "*=loopback", "t"}, {"lookups-from", "loopback", "t"}});
  const int held = connectTo("127.0.0.1", app_->port());
  ASSERT_TRUE(sendAll(held, frame(alive2Body("inside", 4242))));
  ASSERT_EQ(readN(held, 2, 3s), bytes({118, 0}));
  const auto names = ask(bytes({110}));
  EXPECT_NE(names.bytes.find("name inside at port 4242"), std::string::npos);
  const auto port2 = ask(bytes({122}) + "inside");
  ASSERT_GE(port2.bytes.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(port2.bytes[0]), 119);
  EXPECT_EQ(port2.bytes[1], 0);
  close(held);
}

}  // namespace
}  // namespace epmdx::testing
