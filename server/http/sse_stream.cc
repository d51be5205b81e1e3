#include "server/http/sse_stream.h"

#include "server/api/convert.h"
#include "server/api/json.h"

namespace epmdx::http {
namespace {
using api::errorJson;
using api::toJson;

constexpr size_t kMaxEventsPerWake = 512;
constexpr int kMaxNodesPerFrame = 500;

void frame(std::string& out, const char* event, registry::Revision id, const std::string& data) {
  out += "event: ";
  out += event;
  out += "\nid: ";
  out += std::to_string(id);
  out += "\ndata: ";
  out += data;  // Canonical JSON is one line: no newline to split.
  out += "\n\n";
}

}  // namespace

SseStream::SseStream(registry::Registry& registry, Options options)
    : registry_(registry), options_(options), last_frame_(std::chrono::steady_clock::now()) {
  auto wake = [this] { this->wake(); };
  pending_ = "retry: 1000\n\n";  // Reconnect quickly after a daemon restart.
  if (options_.initial && !options_.after) {
    auto [snapshot, w] = registry_.listAndWatch(wake);
    watch_ = std::move(w);
    sent_revision_ = snapshot.revision;
    v1::WatchNodesResponse msg;
    for (size_t i = 0; i < snapshot.nodes.size(); ++i) {
      api::toProto(*snapshot.nodes[i], *msg.add_initial_nodes());
      const bool last = i + 1 == snapshot.nodes.size();
      if (msg.initial_nodes_size() == kMaxNodesPerFrame || last) {
        msg.set_initial_state_complete(last);
        msg.set_revision(snapshot.revision);
        frame(pending_, "initial", snapshot.revision, toJson(msg));
        msg.Clear();
      }
    }
    if (snapshot.nodes.empty()) {
      msg.set_initial_state_complete(true);
      msg.set_revision(snapshot.revision);
      frame(pending_, "initial", snapshot.revision, toJson(msg));
    }
    return;
  }
  const registry::Revision start = options_.after ? *options_.after + 1 : 0;
  auto w = registry_.watch(start, wake);
  if (!w.ok()) {
    // Too old (compacted) or from the future (the daemon restarted since the client's
    // Last-Event-ID): either way the client must start over from a fresh list.
    const auto& rej = w.error();
    const bool old = rej.code == registry::WatchRejection::Code::Compacted;
    frame(pending_, "resync", rej.current,
          errorJson(410, "OUT_OF_RANGE",
                    old ? "revision " + std::to_string(*options_.after) +
                              " is older than the kept history: list again"
                        : "revision " + std::to_string(*options_.after) +
                              " is unknown (the daemon restarted?): list again",
                    rej.oldest_retained, rej.current));
    end_after_pending_ = true;
    return;
  }
  watch_ = std::move(w.value());
  sent_revision_ = watch_->nextRevision() - 1;
}

SseStream::~SseStream() {
  watch_.reset();  // Without mu_: the hub may be waking us right now (see WatchHub).
}

void SseStream::wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    signalled_ = true;
  }
  cv_.notify_one();
}

void SseStream::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_one();
}

std::string SseStream::next(bool& done) {
  done = false;
  if (!pending_.empty()) {
    done = end_after_pending_;
    last_frame_ = std::chrono::steady_clock::now();
    return std::exchange(pending_, {});
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, last_frame_ + options_.heartbeat,
                   [this] { return signalled_ || stopped_; });
    signalled_ = false;
    if (stopped_) {
      done = true;
      return {};
    }
  }
  std::string out;
  std::vector<registry::Event> events;
  auto polled = watch_->poll(kMaxEventsPerWake, events);
  if (!polled.ok()) {
    frame(out, "resync", polled.error().current,
          errorJson(410, "OUT_OF_RANGE",
                    "watcher fell behind: changes after revision " +
                        std::to_string(sent_revision_) + " are no longer kept: list again",
                    polled.error().oldest_retained, polled.error().current));
    done = true;
    return out;
  }
  if (events.size() == kMaxEventsPerWake) {
    std::lock_guard<std::mutex> lock(mu_);
    signalled_ = true;  // More is waiting: do not sleep before the next batch.
  }
  for (const auto& e : events) {
    v1::NodeEvent ev;
    api::toProto(e, ev);
    frame(out, "change", e.revision, toJson(ev));
    sent_revision_ = e.revision;
  }
  const auto now = std::chrono::steady_clock::now();
  if (events.empty() && now - last_frame_ >= options_.heartbeat) {
    // Progress: nothing changed up to the current revision. Also keeps proxies from
    // closing an idle stream, and advances the browser's Last-Event-ID.
    sent_revision_ = std::max(sent_revision_, watch_->nextRevision() - 1);
    v1::WatchNodesResponse msg;
    msg.set_revision(sent_revision_);
    frame(out, "progress", sent_revision_, toJson(msg));
  }
  if (!out.empty()) {
    last_frame_ = now;
  }
  return out;
}

}  // namespace epmdx::http
