// History: the bounded window of recent events, what compaction drops, and the revisions a
// rejected watch reports.

#include "server/registry/history.h"

#include <gtest/gtest.h>

#include "server/registry/registry.h"

namespace epmdx::registry {
namespace {

RegistrationPtr registration(ClusterId cluster) {
  auto r = std::make_shared<Registration>();
  r->cluster = cluster;
  r->node.name = "n" + std::to_string(cluster);
  return r;
}

Event event(Revision revision, ClusterId cluster = kDefaultCluster) {
  Event e;
  e.revision = revision;
  e.registration = registration(cluster);
  return e;
}

std::vector<Revision> revisions(const std::vector<Event>& events) {
  std::vector<Revision> out;
  for (const auto& e : events) {
    out.push_back(e.revision);
  }
  return out;
}

TEST(HistoryTest, EmptyRetainsNothingAndTheOldestIsTheNextRevision) {
  History h(4);
  EXPECT_EQ(h.size(), 0u);
  EXPECT_EQ(h.oldestRetained(41), 42u);
  std::vector<Event> out;
  EXPECT_EQ(h.readFrom(42, 10, out), History::Read::Ok);
  EXPECT_TRUE(out.empty());
}

TEST(HistoryTest, TheWindowSlidesForwardAndReadsBelowItAreCompacted) {
  History h(3);
  for (Revision r = 11; r <= 15; ++r) {
    h.append(event(r));
  }
  // Capacity 3: 11 and 12 were dropped, 13..15 are kept.
  EXPECT_EQ(h.size(), 3u);
  EXPECT_EQ(h.oldestRetained(15), 13u);
  std::vector<Event> out;
  EXPECT_EQ(h.readFrom(12, 10, out), History::Read::Compacted);
  EXPECT_TRUE(out.empty()) << "a compacted read copies nothing";
  EXPECT_EQ(h.readFrom(13, 10, out), History::Read::Ok);
  EXPECT_EQ(revisions(out), (std::vector<Revision>{13, 14, 15}));
}

TEST(HistoryTest, ReadFromStopsAtMaxAndAtTheNewest) {
  History h(10);
  for (Revision r = 1; r <= 6; ++r) {
    h.append(event(r));
  }
  std::vector<Event> out;
  EXPECT_EQ(h.readFrom(2, 3, out), History::Read::Ok);
  EXPECT_EQ(revisions(out), (std::vector<Revision>{2, 3, 4}));
  out.clear();
  EXPECT_EQ(h.readFrom(7, 3, out), History::Read::Ok);
  EXPECT_TRUE(out.empty()) << "the next revision is not there yet";
}

TEST(HistoryTest, ReadLastAndReadAfterFilterByClusterOldestFirst) {
  History h(10);
  for (Revision r = 1; r <= 8; ++r) {
    h.append(event(r, static_cast<ClusterId>(r % 2)));  // Odd revisions in cluster 1.
  }
  std::vector<Event> out;
  h.readLast(2, ClusterId{1}, out);
  EXPECT_EQ(revisions(out), (std::vector<Revision>{5, 7}));
  out.clear();
  h.readLast(3, std::nullopt, out);
  EXPECT_EQ(revisions(out), (std::vector<Revision>{6, 7, 8}));
  out.clear();
  h.readAfter(2, 2, ClusterId{0}, out);
  EXPECT_EQ(revisions(out), (std::vector<Revision>{4, 6}));
  out.clear();
  h.readAfter(10, 8, std::nullopt, out);
  EXPECT_TRUE(out.empty()) << "nothing after the newest";
}

TEST(HistoryTest, ReadAfterBelowTheWindowStartsAtTheOldestKept) {
  History h(2);
  for (Revision r = 1; r <= 5; ++r) {
    h.append(event(r));
  }
  std::vector<Event> out;
  h.readAfter(10, 1, std::nullopt, out);
  EXPECT_EQ(revisions(out), (std::vector<Revision>{4, 5}));
}

TEST(HistoryTest, AZeroCapacityKeepsOneEvent) {
  History h(0);
  EXPECT_EQ(h.capacity(), 1u);
  h.append(event(1));
  h.append(event(2));
  EXPECT_EQ(h.oldestRetained(2), 2u);
}

// The registry reports the window in a rejection: a watch below it is Compacted and one
// beyond the next revision is FutureRevision, each with the oldest kept and the current.
TEST(HistoryTest, ARejectedWatchReportsTheWindowItMissed) {
  RegistryOptions o;
  o.history_size = 3;
  o.async_notify = false;
  o.initial_revision = 100;
  Registry r(o);
  for (int i = 0; i < 5; ++i) {
    NodeInfo n;
    n.name = "n" + std::to_string(i);
    n.port = 1000;
    ASSERT_TRUE(r.add(std::move(n), {}).ok());
  }
  // Revisions 101..105; 103..105 kept.
  auto compacted = r.watch(102, {});
  ASSERT_FALSE(compacted.ok());
  EXPECT_EQ(compacted.error().code, WatchRejection::Code::Compacted);
  EXPECT_EQ(compacted.error().oldest_retained, 103u);
  EXPECT_EQ(compacted.error().current, 105u);

  auto future = r.watch(107, {});
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.error().code, WatchRejection::Code::FutureRevision);
  EXPECT_EQ(future.error().oldest_retained, 103u);
  EXPECT_EQ(future.error().current, 105u);

  auto oldest = r.watch(103, {});
  ASSERT_TRUE(oldest.ok());
  auto next = r.watch(106, {});
  ASSERT_TRUE(next.ok()) << "the next revision is a valid start";

  // A watch that falls out of the window is told so, with the same figures.
  auto& w = *oldest.value();
  for (int i = 5; i < 9; ++i) {
    NodeInfo n;
    n.name = "n" + std::to_string(i);
    n.port = 1000;
    ASSERT_TRUE(r.add(std::move(n), {}).ok());
  }
  EXPECT_TRUE(w.fellBehind());
  std::vector<Event> out;
  auto polled = w.poll(10, out);
  ASSERT_FALSE(polled.ok());
  EXPECT_EQ(polled.error().code, WatchRejection::Code::Compacted);
  EXPECT_EQ(polled.error().oldest_retained, 107u);
  EXPECT_EQ(polled.error().current, 109u);
}

}  // namespace
}  // namespace epmdx::registry
