// Node.host: the node name on a holder's command line, and the host a registration gets.

#include "server/api/node_host.h"

#include <gtest/gtest.h>

#include <memory>

namespace epmdx::testing {
namespace {

using api::CommandLineName;
using api::hostFromCommandLine;
using api::HostNames;
using api::nodeHost;
using api::parseNodeName;
using registry::HolderFact;

const HostNames kNames{"web1", "web1.example.com"};

std::string nul(std::initializer_list<std::string_view> args) {
  std::string out;
  for (auto a : args) {
    out.append(a);
    out.push_back('\0');  // /proc/PID/cmdline ends every argument with a NUL.
  }
  return out;
}

TEST(ParseNodeName, ReadsBeamSmpsRealCommandLine) {
  // As /proc/PID/cmdline shows `erl -sname x -noshell -eval '...'` (erts 13).
  const auto parsed =
      parseNodeName(nul({"/usr/lib/erlang/erts-13.1.5/bin/beam.smp", "--", "-root",
                         "/usr/lib/erlang", "-progname", "erl", "--", "-home", "/root", "--",
                         "-sname", "x@h1", "-noshell", "-eval", "timer:sleep(1), halt()."}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->name, "x");
  EXPECT_EQ(parsed->host, "h1");
  EXPECT_FALSE(parsed->long_names);
}

TEST(ParseNodeName, SpaceJoinedAsHolderProcessKeepsIt) {
  const auto parsed = parseNodeName("beam.smp -- -root /usr/lib/erlang -- -name y@127.0.0.1");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->name, "y");
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_TRUE(parsed->long_names);
}

TEST(ParseNodeName, NoHostPart) {
  const auto parsed = parseNodeName(nul({"beam.smp", "-sname", "x"}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->name, "x");
  EXPECT_EQ(parsed->host, "");
}

TEST(ParseNodeName, RefusesWhatIsNotOneName) {
  EXPECT_FALSE(parseNodeName(""));
  EXPECT_FALSE(parseNodeName(nul({"beam.smp", "-noshell"})));            // No -sname.
  EXPECT_FALSE(parseNodeName(nul({"beam.smp", "-snamex", "a"})));        // Not the flag.
  EXPECT_FALSE(parseNodeName(nul({"beam.smp", "-noshell", "-sname"})));  // Last, no value.
  EXPECT_FALSE(parseNodeName("beam.smp -name"));
  EXPECT_FALSE(parseNodeName(nul({"beam.smp", "-sname", "a", "-sname", "b"})));  // Two.
  EXPECT_FALSE(parseNodeName(nul({"beam.smp", "-sname", "a", "-name", "b@h"})));
}

TEST(ParseNodeName, StopsAtExtra) {
  // After -extra come the program's arguments, not the VM's flags.
  const auto parsed = parseNodeName(nul({"beam.smp", "-sname", "a", "-extra", "-sname", "b"}));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->name, "a");
  EXPECT_FALSE(parseNodeName(nul({"beam.smp", "-extra", "-sname", "b"})));
}

TEST(HostFromCommandLine, OnlyForTheRegisteredName) {
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-sname", "x@h1"}), "x", kNames), "h1");
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-sname", "x@h1"}), "y", kNames), "");
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-sname", "x"}), "x", kNames), "web1");
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-name", "x"}), "x", kNames), "web1.example.com");
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-name", "x@10.0.0.7"}), "x", kNames), "10.0.0.7");
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-noshell"}), "x", kNames), "");
  EXPECT_EQ(hostFromCommandLine(nul({"beam.smp", "-sname"}), "x", kNames), "");
}

registry::Registration registration(std::string peer, std::string local,
                                    std::shared_ptr<const HolderFact> holder = nullptr) {
  registry::Registration r;
  r.node.name = "x";
  r.origin.peer_address = std::move(peer);
  r.origin.local_address = std::move(local);
  r.holder = std::move(holder);
  return r;
}

std::shared_ptr<const HolderFact> holder(HolderFact::Status status, std::string node_host = "") {
  auto f = std::make_shared<HolderFact>();
  f->status = status;
  f->node_host = std::move(node_host);
  return f;
}

TEST(NodeHost, FromTheHolderElseThisHostElseEmpty) {
  using S = HolderFact::Status;
  // The holder's command line wins.
  EXPECT_EQ(
      nodeHost(registration("127.0.0.1:5000", "127.0.0.1:4369", holder(S::Found, "h9")), kNames),
      "h9");
  // On this host: loopback (v4, v6, v4-mapped), or the daemon's own address as the source.
  EXPECT_EQ(nodeHost(registration("127.0.0.1:5000", "127.0.0.1:4369"), kNames), "web1");
  EXPECT_EQ(nodeHost(registration("127.3.4.5:5000", "127.0.0.1:4369"), kNames), "web1");
  EXPECT_EQ(nodeHost(registration("[::1]:5000", "[::1]:4369"), kNames), "web1");
  EXPECT_EQ(nodeHost(registration("[::ffff:127.0.0.1]:5000", "[::]:4369"), kNames), "web1");
  EXPECT_EQ(nodeHost(registration("10.0.0.1:5000", "10.0.0.1:4369"), kNames), "web1");
  // A holder found without a node name (not an Erlang VM's command line), or one that is
  // here but hidden from epmdx: still this host.
  EXPECT_EQ(nodeHost(registration("10.0.0.5:5000", "10.0.0.1:4369", holder(S::Found)), kNames),
            "web1");
  EXPECT_EQ(nodeHost(registration("10.0.0.5:5000", "10.0.0.1:4369", holder(S::NotVisible)), kNames),
            "web1");
  EXPECT_EQ(
      nodeHost(registration("10.0.0.5:5000", "10.0.0.1:4369", holder(S::PermissionDenied)), kNames),
      "web1");
  // A remote peer: not known.
  EXPECT_EQ(nodeHost(registration("10.0.0.5:5000", "10.0.0.1:4369"), kNames), "");
  EXPECT_EQ(nodeHost(registration("10.0.0.5:5000", "10.0.0.1:4369", holder(S::NotOnHost)), kNames),
            "");
  EXPECT_EQ(nodeHost(registration("[2001:db8::5]:5000", "[2001:db8::1]:4369"), kNames), "");
  EXPECT_EQ(nodeHost(registration("", ""), kNames), "");  // No socket (in-process tests).
}

TEST(HostNames, ShortIsTheLongUpToTheFirstDot) {
  const auto names = api::readHostNames();
  ASSERT_FALSE(names.short_name.empty());
  EXPECT_EQ(names.short_name.find('.'), std::string::npos);
  EXPECT_EQ(names.long_name.substr(0, names.short_name.size()), names.short_name);
  EXPECT_EQ(&api::daemonHostNames(), &api::daemonHostNames());  // Read once.
}

}  // namespace
}  // namespace epmdx::testing
