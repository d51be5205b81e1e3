// HoldExpiry: a hold ends with HOLD_EXPIRED at its time on the registry's clock, whoever placed
// it (the registry tells the timer of every new hold), and a hold sooner than the one the timer
// sleeps for re-arms it.

#include "server/api/hold_expiry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "server/registry/registry.h"
#include "tests/support/process.h"

namespace epmdx::api {
namespace {

using namespace std::chrono_literals;
using registry::EventType;

class FakeClock final : public registry::Clock {
 public:
  int64_t nowNanos() const override { return nanos.load(); }
  uint32_t nowSeconds() const override { return static_cast<uint32_t>(nanos.load() / 1000000000); }
  void advance(std::chrono::nanoseconds d) { nanos.fetch_add(d.count()); }
  std::atomic<int64_t> nanos{1'700'000'000'000'000'000};
};

using testing::eventually;  // Polls a condition with a deadline.

class HoldExpiryTest : public ::testing::Test {
 protected:
  registry::RegistryOptions opts() {
    registry::RegistryOptions o;
    o.clock = &clock_;
    return o;
  }
  static void addNode(registry::Registry& r, const std::string& name) {
    registry::NodeInfo n;
    n.name = name;
    n.port = 1000;
    ASSERT_TRUE(r.add(std::move(n), {}).ok());
  }
  static registry::HoldPtr hold(registry::Registry& r, const std::string& name,
                                std::chrono::nanoseconds hold_for) {
    auto evicted = r.evict({.name = name, .actor = "test", .hold_for = hold_for});
    EXPECT_TRUE(evicted.ok());
    return evicted.ok() ? evicted.value().hold : nullptr;
  }
  static bool held(const registry::Registry& r, const std::string& name) {
    for (const auto& h : r.holds().holds) {
      if (h->name == name) {
        return true;
      }
    }
    return false;
  }
  FakeClock clock_;
};

TEST_F(HoldExpiryTest, AHoldExpiresAtItsTimeAndLaterOnesStay) {
  registry::Registry r(opts());
  // An hour between looks: only the soonest expiry (or a new hold) wakes the timer.
  HoldExpiry expiry(r, 1h);
  addNode(r, "soon");
  addNode(r, "late");
  const auto soon = hold(r, "soon", 20ms);
  ASSERT_TRUE(hold(r, "late", 1h));
  auto w = r.watch(r.revision() + 1, {});
  ASSERT_TRUE(w.ok());

  clock_.advance(20ms);  // Exactly the soon hold's time.
  ASSERT_TRUE(eventually([&] { return !held(r, "soon"); })) << "the hold did not expire";
  EXPECT_TRUE(held(r, "late")) << "a hold whose time has not come stays";

  std::vector<registry::Event> events;
  ASSERT_TRUE(w.value()->poll(10, events).ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::HoldExpired);
  EXPECT_EQ(events[0].hold->name, "soon");
  EXPECT_EQ(events[0].time_ns, soon->expires_at_ns) << "ended at its time on the registry clock";
  EXPECT_EQ(r.stats().holds_expired, 1u);
}

TEST_F(HoldExpiryTest, ASoonerHoldPlacedWhileTheTimerSleepsReArmsIt) {
  registry::Registry r(opts());
  HoldExpiry expiry(r, 1h);
  addNode(r, "long");
  addNode(r, "warm");
  addNode(r, "short");
  const auto long_hold = hold(r, "long", 1h);
  ASSERT_TRUE(long_hold);
  ASSERT_TRUE(hold(r, "warm", 20ms));
  clock_.advance(20ms);
  // Once "warm" has expired, the timer's next look finds only the hour-long hold, and it
  // sleeps for that hour...
  ASSERT_TRUE(eventually([&] { return expiry.armedFor() == long_hold->expires_at_ns; }));
  EXPECT_FALSE(held(r, "warm"));
  // ...unless this hold, placed on the registry (not through the API), wakes it.
  ASSERT_TRUE(hold(r, "short", 20ms));
  clock_.advance(20ms);
  EXPECT_TRUE(eventually([&] { return !held(r, "short"); }))
      << "the timer kept sleeping for the hour-long hold";
  EXPECT_TRUE(held(r, "long"));
}

TEST_F(HoldExpiryTest, AHoldPlacedAfterTheTimerIsGoneIsLeftAlone) {
  registry::Registry r(opts());
  {
    HoldExpiry expiry(r, 1h);
    addNode(r, "a");
    ASSERT_TRUE(hold(r, "a", 1h));
  }
  // The timer unsubscribed on destruction: placing a hold calls nothing that is gone.
  addNode(r, "b");
  ASSERT_TRUE(hold(r, "b", 20ms));
  EXPECT_TRUE(held(r, "b"));
  EXPECT_EQ(r.holds().holds.size(), 2u);
}

}  // namespace
}  // namespace epmdx::api
