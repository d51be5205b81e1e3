// A control plane is never shared: admin ports bind without SO_REUSEPORT, an
// address the user asked for that is taken is an error naming its holder, and a taken
// default leaves the epmd port serving with that surface visibly off.

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "tests/support/net.h"
#include "tests/support/process.h"
#include "tests/support/running_app.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

TEST(AdminPorts, ExplicitTakenAddressIsAnErrorThatNamesTheHolder) {
  RunningApp first(RunningApp::testOptions());
  const uint16_t taken = first.app().httpPort();
  Process second({epmdxBinary(), "-port", std::to_string(freePort()), "--grpc-listen=off",
                  "--http-listen=127.0.0.1:" + std::to_string(taken)});
  EXPECT_EQ(second.wait(20s), std::optional<int>(1));
  const std::string err = second.stderrText();
  EXPECT_NE(err.find("127.0.0.1:" + std::to_string(taken)), std::string::npos) << err;
  // The holder is this test process (the in-process daemon).
  EXPECT_NE(err.find("pid " + std::to_string(getpid())), std::string::npos) << err;
}

TEST(AdminPorts, TakenDefaultLeavesEpmdServingAndSaysSo) {
  RunningApp first(RunningApp::testOptions());
  app::Options o = RunningApp::testOptions();
  // As if these were the defaults: the user did not ask for these addresses.
  o.grpc_listen = "127.0.0.1:" + std::to_string(first.app().grpcPort());
  o.grpc_listen_explicit = false;
  RunningApp second(std::move(o));
  EXPECT_EQ(second.app().grpcPort(), 0);  // gRPC is off in the second daemon...
  // ...and its epmd port serves.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!second.app().epmdListening() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(second.app().epmdListening());
  EXPECT_TRUE(waitForPort(second.port(), 5s));

  // The second daemon says which surface is off, and why.
  httplib::Client cli("127.0.0.1", second.app().httpPort());
  auto r = cli.Get("/readyz?verbose");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;  // Still ready: epmd is the job.
  EXPECT_NE(r->body.find("[-]the gRPC admin API off"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("pid " + std::to_string(getpid())), std::string::npos) << r->body;
}

TEST(AdminPorts, NoRequestReachesAnotherDaemonsRegistry) {
  RunningApp first(RunningApp::testOptions());
  app::Options o = RunningApp::testOptions();
  o.http_listen = "127.0.0.1:" + std::to_string(first.app().httpPort());
  o.http_listen_explicit = false;
  RunningApp second(std::move(o));
  ASSERT_EQ(second.app().httpPort(), 0);

  // A node only the second daemon knows: the shared-looking HTTP port never lists it.
  const int fd = connectTo("127.0.0.1", second.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(sendAll(fd, frame(alive2Body("onlyinsecond", 5555))));
  ASSERT_EQ(readN(fd, 2, 5s), bytes({118, 0}));  // ALIVE2_X_RESP, ok.
  httplib::Client cli("127.0.0.1", first.app().httpPort());
  for (int i = 0; i < 50; ++i) {
    auto r = cli.Get("/v1/nodes");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.find("onlyinsecond"), std::string::npos) << "request " << i;
  }
  close(fd);
}

}  // namespace
}  // namespace epmdx::testing
