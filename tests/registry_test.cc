#include "server/registry/registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>

namespace epmdx::registry {
namespace {

class FakeClock final : public Clock {
 public:
  int64_t nowNanos() const override { return nanos; }
  uint32_t nowSeconds() const override { return seconds; }
  int64_t nanos = 1'700'000'000'000'000'000;
  uint32_t seconds = 1'700'000'000;
};

class FakeOwner final : public RegistrationOwner {
 public:
  void closeRegistration() override { ++closes; }
  std::atomic<int> closes{0};
};

NodeInfo node(std::string name, uint16_t port = 1000, uint16_t high = 6) {
  NodeInfo n;
  n.name = std::move(name);
  n.port = port;
  n.node_type = 77;
  n.highest_version = high;
  n.lowest_version = 5;
  return n;
}

class RegistryTest : public ::testing::Test {
 protected:
  RegistryOptions opts(size_t history = 64) {
    RegistryOptions o;
    o.history_size = history;
    o.clock = &clock_;
    o.async_notify = false;
    return o;
  }
  FakeClock clock_;
};

TEST_F(RegistryTest, RegisterFindListAndRevisions) {
  Registry r(opts());
  EXPECT_EQ(r.revision(), 0u);
  auto a = r.add(node("a", 1), Origin{"127.0.0.1:1", 5, "127.0.0.1:4369"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value()->revision, 1u);
  EXPECT_EQ(a.value()->origin.peer_address, "127.0.0.1:1");
  EXPECT_EQ(a.value()->registered_at_ns, clock_.nanos);
  auto b = r.add(node("b", 2), {});
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a.value()->id, b.value()->id);
  EXPECT_EQ(r.revision(), 2u);
  EXPECT_EQ(r.find("a")->node.port, 1);
  EXPECT_EQ(r.find("c"), nullptr);
  const auto snap = r.list();
  EXPECT_EQ(snap.revision, 2u);
  ASSERT_EQ(snap.nodes.size(), 2u);
  EXPECT_EQ(snap.nodes[0]->node.name, "b");  // Newest first, as OTP's NAMES.
  EXPECT_EQ(snap.nodes[1]->node.name, "a");
}

TEST_F(RegistryTest, ListOrderSurvivesRemovalsAtEveryPosition) {
  Registry r(opts());
  std::map<std::string, RegistrationPtr> regs;
  for (std::string n : {"a", "b", "c", "d"}) {
    regs[n] = r.add(node(n), {}).value();
  }
  auto names = [&r] {
    std::string out;
    for (const auto& n : r.list().nodes) {
      out += n->node.name;
    }
    return out;
  };
  EXPECT_EQ(names(), "dcba");
  ASSERT_TRUE(r.remove(*regs["b"], UnregisterReason::ConnectionClosed));  // Middle.
  EXPECT_EQ(names(), "dca");
  ASSERT_TRUE(r.remove(*regs["d"], UnregisterReason::ConnectionClosed));  // Newest.
  EXPECT_EQ(names(), "ca");
  ASSERT_TRUE(r.remove(*regs["a"], UnregisterReason::ConnectionClosed));  // Oldest.
  EXPECT_EQ(names(), "c");
  ASSERT_TRUE(r.add(node("e"), {}).ok());
  EXPECT_EQ(names(), "ec");
  EXPECT_EQ(r.removeAll(UnregisterReason::Shutdown), 0u);  // No owners to close.
  EXPECT_EQ(names(), "");
  ASSERT_TRUE(r.add(node("f"), {}).ok());
  EXPECT_EQ(names(), "f");
}

TEST_F(RegistryTest, RefusalsInOtpsOrderChangeNothing) {
  Registry r(opts());
  ASSERT_TRUE(r.add(node("dup"), {}).ok());
  auto check = [&](NodeInfo n, RegisterError want) {
    auto res = r.add(std::move(n), {});
    ASSERT_FALSE(res.ok());
    EXPECT_EQ(res.error(), want);
  };
  check(node("dup"), RegisterError::NameInUse);
  check(node(std::string(256, 'a')), RegisterError::NameTooLong);
  check(node(std::string(1021, 'a')), RegisterError::NameTooLong);
  check(node("\xC0\x80"), RegisterError::InvalidNameEncoding);
  NodeInfo big = node("x");
  big.extra.assign(1021, 'e');
  check(big, RegisterError::ExtraTooLong);
  // Too long beats duplicate, as in OTP's node_reg2.
  check(node(std::string(300, 'd')), RegisterError::NameTooLong);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_EQ(r.revision(), 1u);
  NodeInfo ok = node(std::string(255, 'a'));
  ok.extra.assign(1020, 'e');
  EXPECT_TRUE(r.add(std::move(ok), {}).ok());
  // 201 four-byte characters: 804 bytes, fine.
  std::string emoji;
  for (int i = 0; i < 201; ++i) {
    emoji += "\xF0\x9F\x98\x80";
  }
  EXPECT_TRUE(r.add(node(emoji), {}).ok());
}

TEST_F(RegistryTest, MaxNodesIsABoundWithAClearError) {
  auto o = opts();
  o.max_nodes = 2;
  Registry r(o);
  ASSERT_TRUE(r.add(node("a"), {}).ok());
  ASSERT_TRUE(r.add(node("b"), {}).ok());
  auto c = r.add(node("c"), {});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error(), RegisterError::TooManyNodes);
  EXPECT_EQ(r.stats().register_errors[static_cast<int>(RegisterError::TooManyNodes)], 1u);
}

TEST_F(RegistryTest, CreationFollowsOtp) {
  Registry r(opts());
  auto a = r.add(node("a", 1, 6), {});
  // New name: time() bumped.
  EXPECT_EQ(a.value()->creation_counter, clock_.seconds + 1);
  EXPECT_EQ(a.value()->creation(), clock_.seconds + 1);
  ASSERT_TRUE(r.remove(*a.value(), UnregisterReason::ConnectionClosed));
  // Same name again: the remembered counter, bumped.
  auto a2 = r.add(node("a", 1, 5), {});
  EXPECT_EQ(a2.value()->creation_counter, clock_.seconds + 2);
  // v5 nodes see counter % 3 + 1.
  EXPECT_EQ(a2.value()->creation(), (clock_.seconds + 2) % 3 + 1);
}

TEST_F(RegistryTest, CreationNeverBelowFour) {
  clock_.seconds = 1;
  Registry r(opts());
  EXPECT_EQ(r.add(node("a"), {}).value()->creation_counter, 4u);
  EXPECT_EQ(CreationPool::bump(0xFFFFFFFF), 4u);  // Wraps to 0, then 4.
}

TEST_F(RegistryTest, CreationPoolRecyclesOldestBeyondLimit) {
  auto o = opts();
  o.max_unreg_records = 2;
  Registry r(o);
  std::vector<uint32_t> counters;
  for (std::string n : {"a", "b", "c"}) {
    clock_.seconds += 10;
    auto reg = r.add(node(n), {});
    counters.push_back(reg.value()->creation_counter);
    (void)r.remove(*reg.value(), UnregisterReason::ConnectionClosed);
  }
  // Three remembered (> 2): a new name takes the oldest record ("a") unchanged.
  auto d = r.add(node("d"), {});
  EXPECT_EQ(d.value()->creation_counter, counters[0]);
  const auto unused = r.unusedNames();
  ASSERT_EQ(unused.size(), 2u);
  EXPECT_EQ(unused[0].name, "b");
  EXPECT_EQ(unused[1].name, "c");
}

TEST_F(RegistryTest, RemoveIsByIdentity) {
  Registry r(opts());
  auto a = r.add(node("a"), {});
  ASSERT_TRUE(r.remove(*a.value(), UnregisterReason::ConnectionClosed));
  auto a2 = r.add(node("a"), {});
  // The old connection closing late must not remove the new holder of the name.
  EXPECT_FALSE(r.remove(*a.value(), UnregisterReason::ConnectionClosed));
  EXPECT_EQ(r.find("a")->id, a2.value()->id);
}

TEST_F(RegistryTest, EvictClosesTheOwnerAndHonoursThePrecondition) {
  Registry r(opts());
  auto owner = std::make_shared<FakeOwner>();
  auto a = r.add(node("a"), {}, owner);
  const RegistrationId id = a.value()->id;
  auto wrong = r.evict({.name = "a", .expected_id = id + 100, .actor = "ops", .detail = "test"});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error(), EvictError::PreconditionFailed);
  EXPECT_EQ(owner->closes, 0);
  EXPECT_EQ(r.size(), 1u);
  auto missing = r.evict({.name = "zz"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), EvictError::NotFound);
  auto ok = r.evict({.name = "a", .expected_id = id, .actor = "alice", .detail = "hung node"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().registration->id, id);
  EXPECT_EQ(ok.value().revision, 2u);
  EXPECT_EQ(owner->closes, 1);
  EXPECT_EQ(r.size(), 0u);
  std::vector<Event> events;
  auto w = r.watch(1, [] {});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w.value()->poll(10, events).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, EventType::Unregistered);
  EXPECT_EQ(events[1].reason, UnregisterReason::Evicted);
  EXPECT_EQ(events[1].actor(), "alice");
  EXPECT_EQ(events[1].detail(), "hung node");
}

TEST_F(RegistryTest, RemoveAllClosesEveryOwner) {
  Registry r(opts());
  auto o1 = std::make_shared<FakeOwner>();
  auto o2 = std::make_shared<FakeOwner>();
  ASSERT_TRUE(r.add(node("a"), {}, o1).ok());
  ASSERT_TRUE(r.add(node("b"), {}, o2).ok());
  EXPECT_EQ(r.removeAll(UnregisterReason::Killed), 2u);
  EXPECT_EQ(o1->closes + o2->closes, 2);
  EXPECT_EQ(r.stats().unregistrations[static_cast<int>(UnregisterReason::Killed)], 2u);
}

TEST_F(RegistryTest, WatchFromListRevisionHasNoGapAndNoRepeat) {
  Registry r(opts());
  ASSERT_TRUE(r.add(node("a"), {}).ok());
  const auto snap = r.list();
  ASSERT_TRUE(r.add(node("b"), {}).ok());
  auto w = r.watch(snap.revision + 1, [] {});
  ASSERT_TRUE(w.ok());
  std::vector<Event> ev;
  ASSERT_TRUE(w.value()->poll(100, ev).ok());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].revision, 2u);
  EXPECT_EQ(ev[0].registration->node.name, "b");
  EXPECT_EQ(w.value()->nextRevision(), 3u);
  ev.clear();
  ASSERT_TRUE(w.value()->poll(100, ev).ok());
  EXPECT_TRUE(ev.empty());
}

TEST_F(RegistryTest, WatchRejectsCompactedAndFutureRevisions) {
  Registry r(opts(4));
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(r.add(node("n" + std::to_string(i)), {}).ok());
  }
  auto old = r.watch(3, [] {});
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.error().code, WatchRejection::Code::Compacted);
  EXPECT_EQ(old.error().oldest_retained, 7u);
  EXPECT_EQ(old.error().current, 10u);
  auto future = r.watch(12, [] {});
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.error().code, WatchRejection::Code::FutureRevision);
  EXPECT_TRUE(r.watch(7, [] {}).ok());
  EXPECT_TRUE(r.watch(11, [] {}).ok());  // "From the next change".
}

TEST_F(RegistryTest, RevisionsFromAnEarlierRunAreTooOld) {
  auto o = opts();
  o.initial_revision = 1000;  // A restarted daemon starts past anything it issued before.
  Registry r(o);
  EXPECT_EQ(r.revision(), 1000u);
  auto reg = r.add(node("a"), {});
  EXPECT_EQ(reg.value()->revision, 1001u);
  auto stale = r.watch(6, [] {});  // Revision 5 of an earlier run.
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, WatchRejection::Code::Compacted);
  EXPECT_TRUE(r.watch(1001, [] {}).ok());
}

TEST_F(RegistryTest, SlowWatcherIsCutOffWhileRegistrationsContinue) {
  Registry r(opts(8));
  auto w = r.watch(0, [] {});
  ASSERT_TRUE(w.ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(r.add(node("n" + std::to_string(i)), {}).ok());  // Never blocks.
  }
  std::vector<Event> ev;
  auto res = w.value()->poll(100, ev);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, WatchRejection::Code::Compacted);
  EXPECT_EQ(res.error().oldest_retained, 13u);
  EXPECT_TRUE(ev.empty());
}

TEST_F(RegistryTest, PollIsBoundedByMax) {
  Registry r(opts());
  auto w = r.watch(0, [] {});
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(r.add(node("n" + std::to_string(i)), {}).ok());
  }
  std::vector<Event> ev;
  EXPECT_EQ(w.value()->poll(2, ev).value(), 2u);
  EXPECT_EQ(w.value()->poll(2, ev).value(), 2u);
  EXPECT_EQ(w.value()->poll(2, ev).value(), 1u);
  ASSERT_EQ(ev.size(), 5u);
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].revision, i + 1);
  }
}

TEST_F(RegistryTest, WakeIsCalledAfterEachChangeAndStopsAfterUnsubscribe) {
  Registry r(opts());
  int wakes = 0;
  {
    auto w = r.watch(0, [&wakes] { ++wakes; });
    ASSERT_TRUE(r.add(node("a"), {}).ok());
    ASSERT_TRUE(r.add(node("b"), {}).ok());
    EXPECT_EQ(wakes, 2);
    EXPECT_EQ(r.stats().watchers, 1u);
  }
  ASSERT_TRUE(r.add(node("c"), {}).ok());
  EXPECT_EQ(wakes, 2);
  EXPECT_EQ(r.stats().watchers, 0u);
}

TEST_F(RegistryTest, ListAndWatchIsAtomic) {
  Registry r(opts());
  ASSERT_TRUE(r.add(node("a"), {}).ok());
  auto [snap, w] = r.listAndWatch([] {});
  EXPECT_EQ(snap.nodes.size(), 1u);
  EXPECT_EQ(w->nextRevision(), snap.revision + 1);
}

// Several threads register and unregister while a watcher follows with the asynchronous
// fan-out; replaying the watcher's events over its starting List must give the final List.
// HOLDER_CHANGED is a new holder identity (status, pids, node host), never a refresh: the
// holder monitor records every registration every interval.
TEST_F(RegistryTest, HolderChangedOnlyWhenTheHolderIsAnother) {
  Registry r(opts());
  const auto a = r.add(node("a"), {}).value();
  auto fact = [](HolderFact::Status status, std::vector<int32_t> pids, std::string host,
                 std::string state = "sleeping", int64_t checked = 1) {
    auto f = std::make_shared<HolderFact>();
    f->status = status;
    for (auto pid : pids) {
      f->processes.push_back({pid, 1000, "u", "beam.smp", "beam.smp -sname a", state});
    }
    f->node_host = std::move(host);
    f->checked_ns = checked;
    return std::shared_ptr<const HolderFact>(std::move(f));
  };
  using S = HolderFact::Status;
  // First found: an event carrying the registration with its holder, as published.
  const auto first = r.recordHolder(kDefaultCluster, "a", a->id, fact(S::Found, {10}, "vm"));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 2u);
  // Only the check time, or only the process state: no event (the state is published).
  EXPECT_FALSE(
      r.recordHolder(kDefaultCluster, "a", a->id, fact(S::Found, {10}, "vm", "sleeping", 9)));
  EXPECT_FALSE(r.recordHolder(kDefaultCluster, "a", a->id, fact(S::Found, {10}, "vm", "stopped")));
  EXPECT_EQ(r.find("a")->holder->processes[0].state, "stopped");
  EXPECT_EQ(r.revision(), 2u);
  // Another set of pids (a fork), the same set in another order (none), another host,
  // another status: one event each.
  EXPECT_EQ(r.recordHolder(kDefaultCluster, "a", a->id, fact(S::Found, {10, 11}, "vm")), 3u);
  EXPECT_FALSE(r.recordHolder(kDefaultCluster, "a", a->id, fact(S::Found, {11, 10}, "vm")));
  EXPECT_EQ(r.recordHolder(kDefaultCluster, "a", a->id, fact(S::Found, {11, 10}, "127.0.0.1")), 4u);
  EXPECT_EQ(r.recordHolder(kDefaultCluster, "a", a->id, fact(S::NotVisible, {}, "")), 5u);
  EXPECT_FALSE(r.recordHolder(kDefaultCluster, "a", a->id + 1, fact(S::Found, {12}, "")));
  EXPECT_EQ(r.stats().holder_changes, 4u);

  auto w = std::move(r.watch(1, {}).value());
  std::vector<Event> events;
  ASSERT_TRUE(w->poll(100, events).ok());
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].type, EventType::Registered);
  EXPECT_EQ(toString(events[1].type), "holder_changed");
  EXPECT_EQ(events[1].registration->holder->processes.at(0).pid, 10);
  EXPECT_EQ(events[1].registration->id, a->id);
  EXPECT_EQ(events[3].registration->holder->node_host, "127.0.0.1");
  EXPECT_EQ(events[4].registration->holder->status, S::NotVisible);
  EXPECT_EQ(events[4].registration, r.find("a"));  // The event's node is the one published.
}

TEST(RegistryConcurrency, WatcherSeesEveryChangeUnderChurn) {
  RegistryOptions o;
  o.history_size = 1 << 20;
  Registry r(o);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(r.add(node("seed" + std::to_string(i)), {}).ok());
  }
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  auto [snap, watch] = r.listAndWatch([&] {
    std::lock_guard<std::mutex> lock(mu);
    woken = true;
    cv.notify_one();
  });
  std::map<std::string, RegistrationId> state;
  for (const auto& n : snap.nodes) {
    state[n->node.name] = n->id;
  }
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "t" + std::to_string(t) + "-" + std::to_string(i % 37);
        auto reg = r.add(node(name), {});
        if (reg.ok() && i % 3 != 0) {
          (void)r.remove(*reg.value(), UnregisterReason::ConnectionClosed);
        }
        if (i % 101 == 0) {
          (void)r.evict({.name = "seed" + std::to_string(i % 50)});
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  const Revision final_rev = r.revision();
  std::vector<Event> ev;
  Revision expect = snap.revision + 1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (watch->nextRevision() <= final_rev) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the watcher stopped progressing";
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return woken; });
      woken = false;
    }
    ev.clear();
    auto res = watch->poll(500, ev);
    ASSERT_TRUE(res.ok());
    for (const auto& e : ev) {
      ASSERT_EQ(e.revision, expect++);  // In order, no gap, no repeat.
      if (e.type == EventType::Registered) {
        ASSERT_TRUE(state.emplace(e.registration->node.name, e.registration->id).second);
      } else {
        auto it = state.find(e.registration->node.name);
        ASSERT_NE(it, state.end());
        ASSERT_EQ(it->second, e.registration->id);
        state.erase(it);
      }
    }
  }
  std::map<std::string, RegistrationId> fresh;
  for (const auto& n : r.list().nodes) {
    fresh[n->node.name] = n->id;
  }
  EXPECT_EQ(state, fresh);
}

}  // namespace
}  // namespace epmdx::registry
