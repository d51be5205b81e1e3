// The one cursor every watcher reads through (api::WatchCursor), on a real Registry with
// synchronous notification and no wake-ups (an empty wake: the test polls the cursor itself).
// Proven here: the initial state in chunks, the cluster filter, reading on past other
// clusters' changes within a bound, progress, falling behind (on poll and while stalled),
// restarting after it, and the error a stream that fell behind ends with.

#include "server/api/watch_cursor.h"

#include <gtest/gtest.h>

#include <string>

#include "server/api/service.h"
#include "tests/support/test_nodes.h"

namespace epmdx::api {
namespace {

using registry::ClusterId;
using Kind = WatchStep::Kind;

constexpr ClusterId kOther = 1;

registry::RegistryOptions options(size_t history = 64) {
  registry::RegistryOptions o;
  o.cluster_names = {"default", "other"};
  o.history_size = history;
  o.async_notify = false;
  return o;
}

registry::RegistrationPtr add(registry::Registry& r, const std::string& name,
                              ClusterId cluster = registry::kDefaultCluster) {
  registry::NodeInfo n = testNode(name, 4000);
  auto added = r.add(n, registry::Origin{"127.0.0.1:1", -1, ""}, {}, cluster);
  EXPECT_TRUE(added.ok()) << name;
  return added.ok() ? added.value() : nullptr;
}

/// A cursor from the registry's next change on, of `cluster` (nullopt: every cluster).
WatchCursor fromNow(registry::Registry& r, std::optional<ClusterId> cluster = std::nullopt) {
  auto watch = std::move(r.watch(0, {}).value());
  const registry::Revision delivered = watch->nextRevision() - 1;
  return WatchCursor(std::move(watch), delivered, cluster, ClusterNames::of(r));
}

TEST(WatchCursor, InitialStateInChunksCompleteOnTheLast) {
  registry::Registry r(options());
  const size_t count = 2 * kMaxNodesPerMessage + 7;
  for (size_t i = 0; i < count; ++i) {
    add(r, "n" + std::to_string(i));
  }
  auto [snapshot, watch] = r.listAndWatch({});
  const auto nodes = snapshot.nodes;
  WatchCursor cursor(std::move(watch), snapshot.revision, std::nullopt, ClusterNames::of(r));
  cursor.startWithInitial(snapshot.nodes);

  std::vector<size_t> sizes;
  size_t seen = 0;
  for (;;) {
    const WatchStep step = cursor.next();
    ASSERT_EQ(step.kind, Kind::Initial);
    EXPECT_EQ(step.revision, snapshot.revision);
    for (size_t i = 0; i < step.nodes.size(); ++i) {
      EXPECT_EQ(step.nodes[i], nodes[seen + i]) << "in the snapshot's order";
    }
    seen += step.nodes.size();
    sizes.push_back(step.nodes.size());
    if (step.complete) {
      break;
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{kMaxNodesPerMessage, kMaxNodesPerMessage, 7}));
  EXPECT_EQ(cursor.next().kind, Kind::Nothing) << "nothing after the complete chunk";
  EXPECT_FALSE(cursor.nextInitial().has_value());

  add(r, "after");
  const WatchStep step = cursor.next();
  ASSERT_EQ(step.kind, Kind::Events);
  ASSERT_EQ(step.events.size(), 1u);
  EXPECT_EQ(step.events[0].registration->node.name, "after");
  EXPECT_EQ(step.events[0].revision, snapshot.revision + 1) << "no gap after the snapshot";
}

TEST(WatchCursor, EmptyInitialStateIsOneCompleteChunk) {
  registry::Registry r(options());
  auto [snapshot, watch] = r.listAndWatch({});
  WatchCursor cursor(std::move(watch), snapshot.revision, std::nullopt, ClusterNames::of(r));
  cursor.startWithInitial({});
  const WatchStep step = cursor.next();
  EXPECT_EQ(step.kind, Kind::Initial);
  EXPECT_TRUE(step.nodes.empty());
  EXPECT_TRUE(step.complete);
  EXPECT_EQ(cursor.next().kind, Kind::Nothing);
}

TEST(WatchCursor, FiltersByClusterAndAdvancesPastEverything) {
  registry::Registry r(options());
  WatchCursor cursor = fromNow(r, kOther);
  add(r, "a");
  add(r, "x", kOther);
  add(r, "b");
  const registry::Revision last = r.revision();

  const WatchStep step = cursor.next();
  ASSERT_EQ(step.kind, Kind::Events);
  ASSERT_EQ(step.events.size(), 1u);
  EXPECT_EQ(step.events[0].registration->node.name, "x");
  EXPECT_EQ(step.revision, last) << "read up to the batch's end, other clusters included";
  EXPECT_EQ(cursor.revision(), last);
  EXPECT_EQ(cursor.next().kind, Kind::Nothing);

  WatchCursor all = fromNow(r);
  add(r, "c");
  add(r, "y", kOther);
  const WatchStep both = all.next();
  ASSERT_EQ(both.kind, Kind::Events);
  EXPECT_EQ(both.events.size(), 2u) << "no filter: every cluster's changes";
}

TEST(WatchCursor, ReadsOnPastOtherClustersAtOnce) {
  registry::Registry r(options(8 * kMaxEventsPerBatch));
  WatchCursor cursor = fromNow(r, kOther);
  for (size_t i = 0; i < 3 * kMaxEventsPerBatch; ++i) {
    add(r, "churn" + std::to_string(i));
  }
  add(r, "wanted", kOther);

  const WatchStep step = cursor.next();
  ASSERT_EQ(step.kind, Kind::Events) << "three batches of others' changes read past in one call";
  ASSERT_EQ(step.events.size(), 1u);
  EXPECT_EQ(step.events[0].registration->node.name, "wanted");
}

TEST(WatchCursor, ReadingPastOthersIsBoundedAndSaysMore) {
  const size_t churn = WatchCursor::kMaxSkippedBatches * kMaxEventsPerBatch + 10;
  registry::Registry r(options(churn + 64));
  WatchCursor cursor = fromNow(r, kOther);
  const registry::Revision start = cursor.revision();
  for (size_t i = 0; i < churn; ++i) {
    add(r, "churn" + std::to_string(i));
  }
  add(r, "wanted", kOther);

  const WatchStep first = cursor.next();
  EXPECT_EQ(first.kind, Kind::Nothing);
  EXPECT_TRUE(first.more) << "stopped at the bound with others' changes still to read";
  EXPECT_EQ(first.revision, start + WatchCursor::kMaxSkippedBatches * kMaxEventsPerBatch);
  EXPECT_EQ(cursor.revision(), first.revision);

  const WatchStep second = cursor.next();
  ASSERT_EQ(second.kind, Kind::Events);
  ASSERT_EQ(second.events.size(), 1u);
  EXPECT_EQ(second.events[0].registration->node.name, "wanted");
  EXPECT_FALSE(cursor.next().more) << "caught up";
}

TEST(WatchCursor, ProgressOnlyWhenDueAndAtTheCurrentRevision) {
  registry::Registry r(options());
  WatchCursor cursor = fromNow(r, kOther);
  EXPECT_EQ(cursor.next().kind, Kind::Nothing);
  const WatchStep idle = cursor.next(true);
  EXPECT_EQ(idle.kind, Kind::Progress);
  EXPECT_EQ(idle.revision, r.revision());

  add(r, "a");
  add(r, "b");
  const WatchStep step = cursor.next(true);
  EXPECT_EQ(step.kind, Kind::Progress) << "only others' changes: progress past them";
  EXPECT_EQ(step.revision, r.revision());
  EXPECT_EQ(cursor.revision(), r.revision());

  add(r, "x", kOther);
  EXPECT_EQ(cursor.next(true).kind, Kind::Events) << "a change of its own comes before progress";
}

TEST(WatchCursor, FellBehindOnPoll) {
  registry::Registry r(options(4));
  WatchCursor cursor = fromNow(r);
  const registry::Revision delivered = cursor.revision();
  for (int i = 0; i < 10; ++i) {
    add(r, "n" + std::to_string(i));
  }
  const WatchStep step = cursor.next();
  ASSERT_EQ(step.kind, Kind::FellBehind);
  EXPECT_EQ(step.revision, delivered) << "delivered nothing past where it was";
  EXPECT_EQ(step.rejection.code, registry::WatchRejection::Code::Compacted);
  EXPECT_EQ(step.rejection.current, r.revision());
  EXPECT_EQ(step.rejection.oldest_retained, r.revision() - 3);
}

TEST(WatchCursor, StalledSaysWhenTheHistoryMovedPast) {
  registry::Registry r(options(4));
  WatchCursor cursor = fromNow(r);
  EXPECT_FALSE(cursor.stalled().has_value());
  add(r, "a");
  add(r, "b");
  EXPECT_FALSE(cursor.stalled().has_value()) << "behind, but still within the history";
  const WatchStep read = cursor.next();
  ASSERT_EQ(read.kind, Kind::Events) << "stalled() read nothing";
  EXPECT_EQ(read.events.size(), 2u);

  for (int i = 0; i < 5; ++i) {
    add(r, "n" + std::to_string(i));
  }
  const auto stalled = cursor.stalled();
  ASSERT_TRUE(stalled.has_value());
  EXPECT_EQ(stalled->code, registry::WatchRejection::Code::Compacted);
  EXPECT_EQ(stalled->oldest_retained, r.revision() - 3);
  EXPECT_EQ(stalled->current, r.revision());

  cursor.close();
  EXPECT_FALSE(cursor.open());
  EXPECT_FALSE(cursor.stalled().has_value());
  EXPECT_EQ(cursor.next().kind, Kind::Nothing) << "a closed cursor sends nothing";
}

TEST(WatchCursor, RestartReadsOnFromTheNewWatch) {
  registry::Registry r(options(4));
  WatchCursor cursor = fromNow(r);
  for (int i = 0; i < 10; ++i) {
    add(r, "n" + std::to_string(i));
  }
  const WatchStep behind = cursor.next();
  ASSERT_EQ(behind.kind, Kind::FellBehind);
  const registry::Revision oldest = behind.rejection.oldest_retained;

  cursor.restart(std::move(r.watch(oldest, {}).value()), oldest - 1);
  EXPECT_EQ(cursor.revision(), oldest - 1);
  const WatchStep step = cursor.next();
  ASSERT_EQ(step.kind, Kind::Events);
  ASSERT_EQ(step.events.size(), 4u);
  EXPECT_EQ(step.events.front().revision, oldest) << "from the oldest kept on";
  EXPECT_EQ(step.events.back().registration->node.name, "n9");
}

TEST(WatchCursor, RestartDropsAnInitialStateNotYetSent) {
  registry::Registry r(options());
  add(r, "a");
  auto [snapshot, watch] = r.listAndWatch({});
  WatchCursor cursor(std::move(watch), snapshot.revision, std::nullopt, ClusterNames::of(r));
  cursor.startWithInitial(snapshot.nodes);
  cursor.restart(std::move(r.watch(0, {}).value()), r.revision());
  EXPECT_EQ(cursor.next().kind, Kind::Nothing);
}

TEST(WatchCursor, FellBehindErrorSaysWhatToDo) {
  const registry::WatchRejection r{registry::WatchRejection::Code::Compacted, 120, 300};
  const Error e = WatchCursor::fellBehindError(99, r);
  EXPECT_EQ(e.code, Code::OutOfRange);
  EXPECT_EQ(e.message,
            "watcher fell behind: changes after revision 99 are no longer kept (oldest 120): "
            "list again");
  ASSERT_TRUE(e.window.has_value());
  EXPECT_EQ(e.window->oldest, 120u);
  EXPECT_EQ(e.window->current, 300u);
}

}  // namespace
}  // namespace epmdx::api
