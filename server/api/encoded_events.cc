#include "server/api/encoded_events.h"

#include "epmdx/v1/registry.pb.h"
#include "server/api/convert.h"
#include "server/api/json.h"

namespace epmdx::api {
namespace {

// Protobuf wire format: a field key is (number << 3) | wire type.
constexpr uint8_t kEventsKey = (3 << 3) | 2;    // WatchNodesResponse.events, length-delimited.
constexpr uint8_t kRevisionKey = (4 << 3) | 0;  // WatchNodesResponse.revision, varint.

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

std::string sseFrame(std::string_view event, registry::Revision id, std::string_view data) {
  std::string out;
  out.reserve(event.size() + data.size() + 40);
  out += "event: ";
  out += event;
  out += "\nid: ";
  out += std::to_string(id);
  out += "\ndata: ";
  out += data;  // Canonical JSON is one line: nothing to split.
  out += "\n\n";
  return out;
}

v1::WatchNodesResponse initialMessage(const ClusterNames& names, const WatchStep& chunk) {
  v1::WatchNodesResponse msg;
  for (const auto& node : chunk.nodes) {
    toProto(names, *node, *msg.add_initial_nodes());
  }
  msg.set_initial_state_complete(chunk.complete);
  msg.set_revision(chunk.revision);
  return msg;
}

EncodedEvents::EncodedEvents(ClusterNames names, size_t capacity)
    : names_(std::move(names)), ring_(capacity == 0 ? 1 : capacity) {}

EncodedEvents::Slot& EncodedEvents::slotLocked(const registry::Event& e) {
  Slot& slot = ring_[e.revision % ring_.size()];
  if (slot.revision != e.revision) {
    slot = Slot{e.revision, nullptr, nullptr};
  }
  return slot;
}

EncodedEvents::Bytes EncodedEvents::sseFrame(const registry::Event& e) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slotLocked(e);
  if (!slot.sse) {
    v1::NodeEvent ev;
    toProto(names_, e, ev);
    slot.sse = std::make_shared<const std::string>(api::sseFrame("change", e.revision, toJson(ev)));
  }
  return slot.sse;
}

EncodedEvents::Bytes EncodedEvents::grpcEntry(const registry::Event& e) {
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slotLocked(e);
  if (!slot.grpc) {
    v1::NodeEvent ev;
    toProto(names_, e, ev);
    const std::string body = ev.SerializeAsString();
    std::string out;
    out.reserve(body.size() + 6);
    out.push_back(static_cast<char>(kEventsKey));
    appendVarint(out, body.size());
    out += body;
    slot.grpc = std::make_shared<const std::string>(std::move(out));
  }
  return slot.grpc;
}

std::string EncodedEvents::grpcRevisionField(registry::Revision revision) {
  std::string out;
  out.push_back(static_cast<char>(kRevisionKey));
  appendVarint(out, revision);
  return out;
}

}  // namespace epmdx::api
