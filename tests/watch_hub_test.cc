// WatchHub: who is woken after a change, that changes during a fan-out coalesce into one more
// round, and that remove() returns only once the removed watcher's wake is not running.

#include "server/registry/watch_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/support/process.h"

namespace epmdx::registry {
namespace {

using namespace std::chrono_literals;

using testing::eventually;  // Polls a condition with a deadline.

TEST(WatchHubTest, InlineModeWakesEveryWatcherBeforeNotifyReturns) {
  WatchHub hub(false);
  int a = 0;
  int b = 0;
  hub.add([&] { ++a; });
  const uint64_t tb = hub.add([&] { ++b; });
  EXPECT_EQ(hub.size(), 2u);
  hub.notify();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  hub.remove(tb);
  EXPECT_EQ(hub.size(), 1u);
  hub.notify();
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 1) << "a removed watcher is never woken again";
}

TEST(WatchHubTest, RemovingAnUnknownTokenIsANoOp) {
  WatchHub hub(false);
  int a = 0;
  hub.add([&] { ++a; });
  hub.remove(12345);
  hub.notify();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(hub.size(), 1u);
}

TEST(WatchHubTest, ChangesDuringAFanOutCoalesceIntoOneMoreRound) {
  WatchHub hub(true);
  std::atomic<bool> release{false};
  std::atomic<bool> marker{false};
  std::atomic<int> wakes{0};
  std::atomic<int> before_marker{0};
  hub.add([&] {
    if (!marker.load()) {
      before_marker.fetch_add(1);
    }
    if (wakes.fetch_add(1) == 0) {
      while (!release.load()) {  // The first round is held until the test lets it go.
        std::this_thread::yield();
      }
    }
  });
  hub.notify();
  ASSERT_TRUE(eventually([&] { return wakes.load() == 1; }));
  for (int i = 0; i < 100; ++i) {
    hub.notify();  // All while the first round runs.
  }
  release = true;
  ASSERT_TRUE(eventually([&] { return wakes.load() >= 2; }));
  marker = true;
  hub.notify();
  ASSERT_TRUE(eventually([&] { return wakes.load() >= 3; }));
  // The hundred notifications made one round, not a hundred: only rounds 1 and 2 ran
  // before the marker's notification.
  EXPECT_EQ(before_marker.load(), 2);
}

TEST(WatchHubTest, RemoveWaitsForTheRunningWakeOfThatWatcher) {
  WatchHub hub(true);
  std::atomic<bool> in_wake{false};
  std::atomic<bool> release{false};
  std::atomic<bool> wake_finished{false};
  const uint64_t token = hub.add([&] {
    in_wake = true;
    while (!release.load()) {
      std::this_thread::yield();
    }
    wake_finished = true;
  });
  hub.notify();
  ASSERT_TRUE(eventually([&] { return in_wake.load(); }));

  std::atomic<bool> remove_returned{false};
  bool finished_when_removed = false;
  std::thread remover([&] {
    hub.remove(token);
    finished_when_removed = wake_finished.load();
    remove_returned = true;
  });
  // size() drops as soon as remove() has taken the watcher off the list; from there it
  // waits for the wake, which is still held.
  ASSERT_TRUE(eventually([&] { return hub.size() == 0; }));
  EXPECT_FALSE(remove_returned.load()) << "remove() returned while the wake was running";
  release = true;
  remover.join();
  EXPECT_TRUE(finished_when_removed) << "remove() must return after the wake, not during it";
}

TEST(WatchHubTest, AWatcherRemovedBeforeItsRoundIsNotWoken) {
  WatchHub hub(true);
  std::atomic<bool> release{false};
  std::atomic<int> first{0};
  std::atomic<int> second{0};
  hub.add([&] {
    first.fetch_add(1);
    while (!release.load()) {
      std::this_thread::yield();
    }
  });
  const uint64_t t2 = hub.add([&] { second.fetch_add(1); });
  hub.notify();
  ASSERT_TRUE(eventually([&] { return first.load() == 1; }));
  hub.remove(t2);  // Not running: returns at once, and its turn in this round is skipped.
  release = true;
  hub.notify();
  ASSERT_TRUE(eventually([&] { return first.load() == 2; }));
  EXPECT_EQ(second.load(), 0);
}

}  // namespace
}  // namespace epmdx::registry
