// epmdxctl's pure parts: YAML scalars and documents, the port of a --server target, and the
// precedence of the token sources.

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "ctl/output.h"
#include "ctl/server_target.h"
#include "ctl/token_source.h"
#include "ctl/yaml.h"

namespace epmdx::ctl {
namespace {

TEST(CtlYaml, PlainOnlyWhenNothingElseCanBeRead) {
  EXPECT_EQ(yamlString("web1"), "web1");
  EXPECT_EQ(yamlString("NODE_TYPE_NORMAL"), "NODE_TYPE_NORMAL");
  // YAML 1.1 booleans and null, numbers, timestamps, indicators, empty.
  for (const std::string s : {"yes",  "No",   "on",    "OFF",    "y",
                              "n",    "true", "null",  "~",      "123",
                              "1e3",  "0x1f", ".inf",  "-1",     "2026-11-27T07:34:16Z",
                              "a: b", "#x",   "&a",    "*a",     "!t",
                              "[x]",  "{x}",  "|",     ">",      "'q'",
                              "%x",   "",     " lead", "trail ", "a#b c",
                              "@x"}) {
    EXPECT_EQ(yamlString(s).front(), '"') << s;
  }
  EXPECT_EQ(yamlString("q\"uote\\"), "\"q\\\"uote\\\\\"");
  EXPECT_EQ(yamlString("a\nb\tc"), "\"a\\nb\\tc\"");
  EXPECT_EQ(yamlString(std::string("\x01", 1)), "\"\\x01\"");
  EXPECT_EQ(yamlString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 kept as is.
  EXPECT_EQ(yamlString("x\xc2\x85y"), "\"x\\u0085y\"");     // NEL is a YAML line break.
  EXPECT_EQ(yamlString("x\xe2\x80\xa8y"), "\"x\\u2028y\"");
}

TEST(CtlYaml, DocumentFollowsTheJsonInFieldOrder) {
  v1::ListNodesResponse list;
  list.set_revision(1764075123456789);
  auto* n = list.add_nodes();
  n->set_name("web1");
  n->set_port(4000);
  n->set_extra(std::string("\x00\xff", 2));
  n->set_registration_id(17);
  n->mutable_registered_at()->set_seconds(1764075123);
  const std::string yaml = toYaml(list);
  EXPECT_EQ(yaml.rfind(
                "nodes:\n  - name: web1\n    port: 4000\n    nodeType: NODE_TYPE_UNSPECIFIED\n", 0),
            0u)
      << yaml;
  EXPECT_NE(yaml.find("\n    extra: \"AP8=\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\n    registrationId: \"17\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\n    registeredAt: \"2025-11-25T12:52:03Z\"\n"), std::string::npos) << yaml;
  const std::string last = "\nrevision: \"1764075123456789\"\n";
  EXPECT_EQ(yaml.substr(yaml.size() - last.size()), last) << yaml;
  v1::ListNodesResponse empty;
  EXPECT_EQ(toYaml(empty), "nodes: []\nrevision: \"0\"\n");
}

TEST(CtlServer, PortOfATarget) {
  EXPECT_EQ(targetPort("127.0.0.1:4370"), std::optional<uint16_t>(4370));
  EXPECT_EQ(targetPort("localhost:4400"), std::optional<uint16_t>(4400));
  EXPECT_EQ(targetPort("[::1]:4371"), std::optional<uint16_t>(4371));
  EXPECT_EQ(targetPort("dns:///epmdx.example:4370"), std::optional<uint16_t>(4370));
  EXPECT_EQ(targetPort("ipv4:10.0.0.5:81"), std::optional<uint16_t>(81));
  EXPECT_EQ(targetPort("localhost"), std::nullopt);
  EXPECT_EQ(targetPort("::1"), std::nullopt);
  EXPECT_EQ(targetPort("host:0"), std::nullopt);
  EXPECT_EQ(targetPort("host:70000"), std::nullopt);
  EXPECT_EQ(targetPort("host:12ab"), std::nullopt);
}

// gRPC dials 443 for a target without a port; epmdxctl means its admin port 4370.
TEST(CtlServer, AServerWithoutAPortMeansTheAdminPort) {
  EXPECT_EQ(withDefaultPort("localhost"), "localhost:4370");
  EXPECT_EQ(withDefaultPort("127.0.0.1"), "127.0.0.1:4370");
  EXPECT_EQ(withDefaultPort("::1"), "[::1]:4370");
  EXPECT_EQ(withDefaultPort("[::1]"), "[::1]:4370");
  EXPECT_EQ(withDefaultPort("dns:///epmdx.example"), "dns:///epmdx.example:4370");
  EXPECT_EQ(withDefaultPort("ipv4:10.0.0.5"), "ipv4:10.0.0.5:4370");
  EXPECT_EQ(withDefaultPort("ipv6:::1"), "ipv6:[::1]:4370");
  // A port given stays, even one gRPC will refuse; so do sockets.
  EXPECT_EQ(withDefaultPort("localhost:4400"), "localhost:4400");
  EXPECT_EQ(withDefaultPort("[::1]:4371"), "[::1]:4371");
  EXPECT_EQ(withDefaultPort("host:0"), "host:0");
  EXPECT_EQ(withDefaultPort("unix:/run/epmdx.sock"), "unix:/run/epmdx.sock");
  EXPECT_EQ(withDefaultPort(""), "");
  EXPECT_EQ(targetPort(withDefaultPort("localhost")), std::optional<uint16_t>(4370));
}

std::map<std::string, std::string>& fakeEnv() {
  static std::map<std::string, std::string> env;
  return env;
}

const char* fakeGetenv(const char* name) {
  const auto it = fakeEnv().find(name);
  return it == fakeEnv().end() ? nullptr : it->second.c_str();
}

TEST(CtlToken, PrecedenceFlagsThenEnvironmentThenThePerPortFile) {
  fakeEnv() = {{"XDG_RUNTIME_DIR", "/run/user/7"},
               {"EPMDX_TOKEN", "envtok"},
               {"EPMDX_TOKEN_FILE", "/env/file"}};
  auto a = TokenSource::resolve("flagtok", "/flag/file", fakeGetenv, "h:4400");
  EXPECT_EQ(a.token(), "flagtok");
  EXPECT_FALSE(a.fromFile());
  auto b = TokenSource::resolve("", "/flag/file", fakeGetenv, "h:4400");
  EXPECT_EQ(b.path(), "/flag/file");
  EXPECT_TRUE(b.explicitFile());
  auto c = TokenSource::resolve("", "", fakeGetenv, "h:4400");
  EXPECT_EQ(c.token(), "envtok");
  fakeEnv().erase("EPMDX_TOKEN");
  auto d = TokenSource::resolve("", "", fakeGetenv, "h:4400");
  EXPECT_EQ(d.path(), "/env/file");
  EXPECT_TRUE(d.explicitFile());
  fakeEnv().erase("EPMDX_TOKEN_FILE");
  auto e = TokenSource::resolve("", "", fakeGetenv, "h:4400");
  EXPECT_EQ(e.path(), "/run/user/7/epmdx/admin-4400.token");
  EXPECT_FALSE(e.explicitFile());
  auto f = TokenSource::resolve("", "", fakeGetenv, "unix:/run/epmdx.sock");
  EXPECT_FALSE(f.fromFile());
  EXPECT_NE(f.error().find("pass --token-file"), std::string::npos) << f.error();
}

TEST(CtlOutput, WidthsCountCodePointsAndCarryAcrossCalls) {
  EXPECT_EQ(displayWidth("caf\xc3\xa9"), 4u);
  std::vector<size_t> widths;
  EXPECT_EQ(renderRows({{"NAME", "PORT"}, {"caf\xc3\xa9s", "1"}}, &widths),
            "NAME   PORT\ncaf\xc3\xa9s  1\n");
  EXPECT_EQ(renderRows({{"a", "2"}}, &widths), "a      2\n");
}

}  // namespace
}  // namespace epmdx::ctl
