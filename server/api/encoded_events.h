#pragma once

// Each event encoded once per protocol and shared by every watcher of that protocol: with a
// thousand watchers a change costs one serialization, not a thousand. The bytes are
// reference-counted, so a watcher whose write is still in flight keeps them alive and
// nothing is copied per watcher.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "epmdx/v1/registry.pb.h"
#include "server/api/convert.h"
#include "server/api/watch_cursor.h"
#include "server/registry/registry.h"

namespace epmdx::api {

class EncodedEvents {
 public:
  using Bytes = std::shared_ptr<const std::string>;

  /// @param capacity how many recent events keep their encodings (a ring by revision).
  /// @param names name the clusters in the messages.
  explicit EncodedEvents(ClusterNames names, size_t capacity = 4096);

  /// The SSE frame of the event: "event: change\nid: REV\ndata: NodeEvent JSON\n\n".
  Bytes sseFrame(const registry::Event& e);

  /// The event as one `events` entry (field 3) of a serialized WatchNodesResponse, tag and
  /// length included: a response is these entries one after another, then the revision.
  Bytes grpcEntry(const registry::Event& e);

  /// The `revision` field (4) of a WatchNodesResponse, serialized.
  static std::string grpcRevisionField(registry::Revision revision);

 private:
  struct Slot {
    registry::Revision revision = 0;
    Bytes sse;
    Bytes grpc;
  };
  Slot& slotLocked(const registry::Event& e);

  const ClusterNames names_;
  std::mutex mu_;
  std::vector<Slot> ring_;  // Guarded by mu_.
};

/// The WatchNodesResponse of a chunk of the initial state (WatchStep::Kind::Initial).
v1::WatchNodesResponse initialMessage(const ClusterNames& names, const WatchStep& chunk);

/// An SSE frame with the given event name, id and one-line data.
std::string sseFrame(std::string_view event, registry::Revision id, std::string_view data);

}  // namespace epmdx::api
