// The encodings shared by every watcher (api::EncodedEvents), on real registry events:
// each frame has the bytes the event would have encoded alone, and a second watcher of the
// same event gets the same bytes (one allocation), not a copy. An encoding held by a write
// in flight outlives its slot in the ring.

#include "server/api/encoded_events.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/api/json.h"
#include "tests/support/test_nodes.h"

namespace epmdx::api {
namespace {

class EncodedEventsTest : public ::testing::Test {
 protected:
  EncodedEventsTest() : registry_(options()), names_(ClusterNames::of(registry_)) {}

  static registry::RegistryOptions options() {
    registry::RegistryOptions o;
    o.cluster_names = {"default", "blue"};
    o.async_notify = false;
    o.initial_revision = 1'700'000'000'000'000;  // As the daemon's: multi-byte varints.
    return o;
  }

  /// Registers `name` (in `cluster`) and returns its REGISTERED event.
  registry::Event added(const std::string& name, registry::ClusterId cluster = 0) {
    registry::NodeInfo n = testNode(name, 4001);
    n.extra = "x";
    EXPECT_TRUE(registry_.add(n, registry::Origin{"127.0.0.1:9", -1, ""}, {}, cluster).ok());
    auto snapshot = registry_.recentEvents(1);
    EXPECT_EQ(snapshot.events.size(), 1u);
    return snapshot.events.front();
  }

  v1::NodeEvent alone(const registry::Event& e) {
    v1::NodeEvent ev;
    toProto(names_, e, ev);
    return ev;
  }

  registry::Registry registry_;
  ClusterNames names_;
};

TEST_F(EncodedEventsTest, SseFrameIsTheEventsJsonAsAChangeFrame) {
  EncodedEvents encoded(names_);
  const auto e = added("a", 1);
  const auto frame = encoded.sseFrame(e);
  ASSERT_NE(frame, nullptr);
  EXPECT_EQ(*frame, "event: change\nid: " + std::to_string(e.revision) +
                        "\ndata: " + toJson(alone(e)) + "\n\n");
  EXPECT_NE(frame->find("\"cluster\":\"blue\""), std::string::npos) << *frame;
}

TEST_F(EncodedEventsTest, GrpcEntriesAndRevisionAreAWatchNodesResponse) {
  EncodedEvents encoded(names_);
  const auto a = added("a");
  const auto b = added("b", 1);

  // What a watch reactor writes: the entries one after another, then the revision.
  const std::string wire =
      *encoded.grpcEntry(a) + *encoded.grpcEntry(b) + EncodedEvents::grpcRevisionField(b.revision);

  v1::WatchNodesResponse expected;
  *expected.add_events() = alone(a);
  *expected.add_events() = alone(b);
  expected.set_revision(b.revision);
  EXPECT_EQ(wire, expected.SerializeAsString()) << "the bytes protobuf writes for the message";

  v1::WatchNodesResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ASSERT_EQ(parsed.events_size(), 2);
  EXPECT_EQ(parsed.events(1).node().name(), "b");
  EXPECT_EQ(parsed.events(1).node().cluster(), "blue");
  EXPECT_EQ(parsed.revision(), b.revision);
}

TEST_F(EncodedEventsTest, RevisionFieldAlone) {
  for (registry::Revision rev : {0ull, 1ull, 127ull, 128ull, 1'700'000'000'000'123ull}) {
    v1::WatchNodesResponse expected;
    expected.set_revision(rev);
    v1::WatchNodesResponse parsed;
    ASSERT_TRUE(parsed.ParseFromString(EncodedEvents::grpcRevisionField(rev)));
    EXPECT_EQ(parsed.revision(), rev);
    if (rev != 0) {  // Protobuf leaves a zero out; the field is written anyway.
      EXPECT_EQ(EncodedEvents::grpcRevisionField(rev), expected.SerializeAsString());
    }
  }
}

TEST_F(EncodedEventsTest, EveryWatcherSharesOneEncoding) {
  EncodedEvents encoded(names_);
  const auto e = added("a");
  const auto first_sse = encoded.sseFrame(e);
  const auto first_grpc = encoded.grpcEntry(e);
  EXPECT_EQ(encoded.sseFrame(e).get(), first_sse.get()) << "the same bytes, not a copy";
  EXPECT_EQ(encoded.grpcEntry(e).get(), first_grpc.get());
  EXPECT_NE(static_cast<const void*>(first_sse.get()), static_cast<const void*>(first_grpc.get()));
}

TEST_F(EncodedEventsTest, AnEncodingInFlightOutlivesItsSlot) {
  EncodedEvents encoded(names_, 2);
  const auto a = added("a");
  const auto held = encoded.sseFrame(a);  // A write in flight keeps it.
  const std::string bytes = *held;
  added("b");
  const auto c = added("c");  // The ring of two: c takes a's slot.
  encoded.sseFrame(c);
  EXPECT_EQ(*held, bytes) << "still valid and unchanged";
  const auto again = encoded.sseFrame(a);
  EXPECT_NE(again.get(), held.get()) << "encoded anew once its slot was reused";
  EXPECT_EQ(*again, bytes) << "to the same bytes";
}

TEST_F(EncodedEventsTest, InitialMessageCarriesTheChunk) {
  added("a");
  added("b", 1);
  const auto snapshot = registry_.list();
  WatchStep chunk;
  chunk.kind = WatchStep::Kind::Initial;
  chunk.revision = snapshot.revision;
  chunk.nodes = snapshot.nodes;
  chunk.complete = true;
  const auto msg = initialMessage(names_, chunk);
  ASSERT_EQ(msg.initial_nodes_size(), 2);
  EXPECT_EQ(msg.initial_nodes(0).name(), snapshot.nodes[0]->node.name);
  EXPECT_EQ(msg.initial_nodes(1).name(), snapshot.nodes[1]->node.name);
  EXPECT_TRUE(msg.initial_state_complete());
  EXPECT_EQ(msg.revision(), snapshot.revision);
  EXPECT_EQ(msg.events_size(), 0);
}

TEST(SseFrame, EventIdAndOneLineOfData) {
  EXPECT_EQ(sseFrame("progress", 42, "{\"revision\":\"42\"}"),
            "event: progress\nid: 42\ndata: {\"revision\":\"42\"}\n\n");
}

}  // namespace
}  // namespace epmdx::api
