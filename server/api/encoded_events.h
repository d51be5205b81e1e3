#pragma once

// Each event encoded once per protocol and shared by every watcher of that protocol: with a
// thousand watchers a change costs one serialization, not a thousand. The bytes are
// reference-counted, so a watcher whose write is still in flight keeps them alive and
// nothing is copied per watcher.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/registry/registry.h"

namespace epmdx::api {

class EncodedEvents {
 public:
  using Bytes = std::shared_ptr<const std::string>;

  /// @param capacity how many recent events keep their encodings (a ring by revision).
  explicit EncodedEvents(const registry::Registry& registry, size_t capacity = 4096);
  const registry::Registry& registry() const { return registry_; }

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

  const registry::Registry& registry_;
  std::mutex mu_;
  std::vector<Slot> ring_;  // Guarded by mu_.
};

/// An SSE frame with the given event name, id and one-line data.
std::string sseFrame(std::string_view event, registry::Revision id, std::string_view data);

}  // namespace epmdx::api
