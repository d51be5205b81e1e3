// HOST:PORT, the one parser of the daemon's listen addresses and epmdxctl's --server.

#include "server/common/host_port.h"

#include <gtest/gtest.h>

namespace epmdx {
namespace {

std::string show(const std::optional<HostPort>& hp) {
  if (!hp) {
    return "invalid";
  }
  return "host=" + hp->host + " port=" + (hp->port ? std::to_string(*hp->port) : "none");
}

TEST(HostPort, SplitsHostAndPort) {
  EXPECT_EQ(show(parseHostPort("127.0.0.1:4370")), "host=127.0.0.1 port=4370");
  EXPECT_EQ(show(parseHostPort("localhost:0")), "host=localhost port=0");
  EXPECT_EQ(show(parseHostPort("[::1]:4371")), "host=::1 port=4371");
  EXPECT_EQ(show(parseHostPort("[fe80::1%eth0]:65535")), "host=fe80::1%eth0 port=65535");
  EXPECT_EQ(show(parseHostPort(":4370")), "host= port=4370");
}

TEST(HostPort, AHostAloneHasNoPort) {
  EXPECT_EQ(show(parseHostPort("localhost")), "host=localhost port=none");
  EXPECT_EQ(show(parseHostPort("[::1]")), "host=::1 port=none");
  // More than one colon without brackets: an IPv6 address, never an address and a port.
  EXPECT_EQ(show(parseHostPort("::1")), "host=::1 port=none");
  EXPECT_EQ(show(parseHostPort("fd00::4370")), "host=fd00::4370 port=none");
  EXPECT_EQ(show(parseHostPort("")), "host= port=none");
}

TEST(HostPort, ABadPortIsNoPort) {
  for (const char* bad : {"host:", "host:x", "host:12ab", "host:70000", "host:123456",
                          "[::1]:", "[::1]x", "[::1]:x", "[::1"}) {
    EXPECT_EQ(show(parseHostPort(bad)), "invalid") << bad;
  }
}

TEST(HostPort, JoinBracketsIpv6) {
  EXPECT_EQ(joinHostPort("localhost", 4370), "localhost:4370");
  EXPECT_EQ(joinHostPort("10.0.0.5", 1), "10.0.0.5:1");
  EXPECT_EQ(joinHostPort("::1", 4370), "[::1]:4370");
  EXPECT_EQ(show(parseHostPort(joinHostPort("fd00::1", 80))), "host=fd00::1 port=80");
}

}  // namespace
}  // namespace epmdx
