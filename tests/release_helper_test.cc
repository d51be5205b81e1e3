// Which registered names are an Elixir release's short-lived helper nodes (bin/APP rpc, pid,
// stop, restart, remote), as the script names them; elixir_test proves it with a real release.

#include <gtest/gtest.h>

#include "server/common/release_helper.h"

namespace epmdx {
namespace {

TEST(ReleaseHelper, TheScriptsNamesAreHelpers) {
  EXPECT_EQ(releaseHelper("rpc-8a18-demo"), (ReleaseHelper{"rpc", "demo"}));
  EXPECT_EQ(releaseHelper("rem-00f0-my_app"), (ReleaseHelper{"remote", "my_app"}));
  EXPECT_EQ(releaseHelper("rpc-abcd-a-b"), (ReleaseHelper{"rpc", "a-b"}));
}

TEST(ReleaseHelper, OtherNamesAreNot) {
  for (const char* name : {"demo", "rpc", "rpc-8a18-", "rpc-8a1-demo", "rpc-8A18-demo",
                           "rpc-8a1g-demo", "rpc_8a18-demo", "rpc-8a18_demo", "rex-8a18-demo",
                           "xrpc-8a18-demo", "rpc-8a18x-demo", ""}) {
    EXPECT_FALSE(releaseHelper(name)) << name;
  }
}

}  // namespace
}  // namespace epmdx
