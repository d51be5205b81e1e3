// Holds: a name reserved after an eviction, per cluster, on the registry's clock, with its
// events in revision order.

#include <gtest/gtest.h>

#include "server/registry/registry.h"

namespace epmdx::registry {
namespace {

using namespace std::chrono_literals;

class FakeClock final : public Clock {
 public:
  int64_t nowNanos() const override { return nanos; }
  uint32_t nowSeconds() const override { return static_cast<uint32_t>(nanos / 1000000000); }
  int64_t nanos = 1'700'000'000'000'000'000;
};

NodeInfo node(std::string name) {
  NodeInfo n;
  n.name = std::move(name);
  n.port = 1000;
  n.node_type = 77;
  n.highest_version = 6;
  n.lowest_version = 5;
  return n;
}

class RegistryHoldsTest : public ::testing::Test {
 protected:
  RegistryOptions opts() {
    RegistryOptions o;
    o.cluster_names = {"default", "blue"};
    o.clock = &clock_;
    o.async_notify = false;
    return o;
  }
  std::vector<Event> eventsFrom(Registry& r, Revision from) {
    std::vector<Event> out;
    auto w = r.watch(from, {});
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE(w.value()->poll(100, out).ok());
    return out;
  }
  FakeClock clock_;
};

TEST_F(RegistryHoldsTest, AHeldNameIsRefusedUntilItsTimeThenExpiresWithAnEvent) {
  Registry r(opts());
  const auto a = r.add(node("a"), {}).value();
  auto ev = r.evict(
      {.name = "a", .expected_id = a->id, .actor = "ops@peer", .detail = "hung", .hold_for = 10s});
  ASSERT_TRUE(ev.ok());
  ASSERT_TRUE(ev.value().hold);
  EXPECT_EQ(ev.value().hold->revision, ev.value().revision + 1);
  EXPECT_EQ(ev.value().hold->expires_at_ns, clock_.nanos + 10'000'000'000);
  EXPECT_EQ(ev.value().hold->registration->id, a->id);

  auto refused = r.add(node("a"), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), RegisterError::NameHeld);
  EXPECT_EQ(r.stats().register_errors[static_cast<size_t>(RegisterError::NameHeld)], 1u);
  // Only in its own cluster, and only that name.
  EXPECT_TRUE(r.add(node("a"), {}, {}, 1).ok());
  EXPECT_TRUE(r.add(node("b"), {}).ok());
  EXPECT_EQ(r.holds().holds.size(), 1u);
  EXPECT_EQ(r.holds(1).holds.size(), 0u);

  clock_.nanos += 9'999'999'999;
  EXPECT_TRUE(r.expireHolds().empty());
  EXPECT_FALSE(r.add(node("a"), {}).ok());
  clock_.nanos += 1;
  const auto expired = r.expireHolds();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_FALSE(r.nextHoldExpiry());
  const Revision before = r.revision();
  EXPECT_TRUE(r.add(node("a"), {}).ok());
  const auto events = eventsFrom(r, ev.value().revision);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::Unregistered);
  EXPECT_EQ(events[1].type, EventType::Held);
  EXPECT_EQ(events[1].actor(), "ops@peer");
  EXPECT_EQ(events[1].detail(), "hung");
  ASSERT_TRUE(events[1].hold);
  EXPECT_EQ(events.back().type, EventType::Registered);
  EXPECT_EQ(events.back().revision, before + 1);
  EXPECT_EQ(events[events.size() - 2].type, EventType::HoldExpired);
  const auto s = r.stats();
  EXPECT_EQ(s.holds, 0u);
  EXPECT_EQ(s.holds_placed, 1u);
  EXPECT_EQ(s.holds_expired, 1u);
}

TEST_F(RegistryHoldsTest, AnExpiredHoldEndsBeforeTheRegistrationThatFindsItFirst) {
  Registry r(opts());
  const auto a = r.add(node("a"), {}).value();
  ASSERT_TRUE(r.evict({.name = "a", .expected_id = a->id, .hold_for = 1s}).ok());
  clock_.nanos += 2'000'000'000;  // No expiry sweep ran.
  const Revision before = r.revision();
  ASSERT_TRUE(r.add(node("a"), {}).ok());
  const auto events = eventsFrom(r, before + 1);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, EventType::HoldExpired);
  EXPECT_EQ(events[1].type, EventType::Registered);
}

TEST_F(RegistryHoldsTest, LiftEndsAHoldAtOnceWithWhoAndWhy) {
  Registry r(opts());
  const auto a = r.add(node("a"), {}, {}, 1).value();
  ASSERT_TRUE(r.evict({.name = "a", .cluster = 1, .expected_id = a->id, .hold_for = 3600s}).ok());
  auto missing = r.liftHold("a", kDefaultCluster, "x", "y");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), HoldError::NotFound);
  EXPECT_FALSE(r.add(node("a"), {}, {}, 1).ok());
  auto lifted = r.liftHold("a", 1, "alice@peer", "replaced");
  ASSERT_TRUE(lifted.ok());
  EXPECT_EQ(lifted.value().revision, r.revision());
  const auto events = eventsFrom(r, lifted.value().revision);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, EventType::HoldLifted);
  EXPECT_EQ(events[0].actor(), "alice@peer");
  EXPECT_EQ(events[0].detail(), "replaced");
  EXPECT_TRUE(r.add(node("a"), {}, {}, 1).ok());
  EXPECT_FALSE(r.liftHold("a", 1).ok());
  EXPECT_EQ(r.stats().holds_lifted, 1u);
}

TEST_F(RegistryHoldsTest, AnEvictionWithoutAHoldLeavesTheNameFree) {
  Registry r(opts());
  const auto a = r.add(node("a"), {}).value();
  auto ev = r.evict({.name = "a", .expected_id = a->id});
  ASSERT_TRUE(ev.ok());
  EXPECT_FALSE(ev.value().hold);
  EXPECT_TRUE(r.holds().holds.empty());
  EXPECT_TRUE(r.add(node("a"), {}).ok());
}

TEST_F(RegistryHoldsTest, HoldsAreListedSoonestFirst) {
  Registry r(opts());
  for (const char* name : {"x", "y", "z"}) {
    ASSERT_TRUE(r.add(node(name), {}).ok());
  }
  ASSERT_TRUE(r.evict({.name = "x", .hold_for = 30s}).ok());
  ASSERT_TRUE(r.evict({.name = "y", .hold_for = 10s}).ok());
  ASSERT_TRUE(r.evict({.name = "z", .hold_for = 20s}).ok());
  const auto holds = r.holds().holds;
  ASSERT_EQ(holds.size(), 3u);
  EXPECT_EQ(holds[0]->name, "y");
  EXPECT_EQ(holds[1]->name, "z");
  EXPECT_EQ(holds[2]->name, "x");
  EXPECT_EQ(*r.nextHoldExpiry(), holds[0]->expires_at_ns);
}

}  // namespace
}  // namespace epmdx::registry
