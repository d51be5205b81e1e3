#include "server/grpc/watch_reactor.h"

#include <algorithm>

#include "server/api/convert.h"
#include "server/grpc/registry_service.h"

namespace epmdx::grpcapi {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

/// A slice that references shared bytes (no copy); the slice holds a reference.
grpc::Slice sharedSlice(const api::EncodedEvents::Bytes& bytes) {
  auto* ref = new api::EncodedEvents::Bytes(bytes);
  return grpc::Slice(
      const_cast<char*>((*ref)->data()), (*ref)->size(),
      [](void* p) { delete static_cast<api::EncodedEvents::Bytes*>(p); }, ref);
}

grpc::ByteBuffer serialized(const v1::WatchNodesResponse& msg) {
  grpc::Slice slice(msg.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

WatchReactor::WatchReactor(grpc::CallbackServerContext* ctx, api::Service& api,
                           api::EncodedEvents& encoded, WatchSet& set,
                           const v1::WatchNodesRequest& req)
    : ctx_(ctx),
      api_(api),
      encoded_(encoded),
      set_(set),
      progress_interval_(req.progress_interval_ms() == 0
                             ? milliseconds(5000)
                             : milliseconds(std::max<uint32_t>(req.progress_interval_ms(), 100))) {
  std::lock_guard<std::mutex> lock(mu_);
  last_write_ = steady_clock::now();
  api::WatchParams params;
  params.initial = req.send_initial_state();
  if (req.has_after_revision()) {
    params.after = req.after_revision();
  }
  params.cluster = req.cluster();
  params.source = req.source();
  auto opened = api.openWatch(api::Surface::Grpc, params, [this] { wake(); });
  if (!opened.ok()) {
    finishLocked(toStatus(opened.error()));
    return;
  }
  watch_ = std::move(opened.value());
  if (!set_.add(this)) {
    finishLocked({grpc::StatusCode::UNAVAILABLE, "epmdx is shutting down"});
    return;
  }
  in_set_ = true;
  tryWriteLocked();
}

void WatchReactor::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ && write_pending_ && !cancelled_ &&
      steady_clock::now() - finished_at_ >= kCancelGrace) {
    // The status cannot go out behind a write the client never takes: cancel, which fails
    // the write and ends the call (OnDone), and with it the slot and the buffers.
    cancelled_ = true;
    watch_.slot = api::WatchSlot();
    ctx_->TryCancel();
    return;
  }
  tryWriteLocked();
}

void WatchReactor::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  finishLocked({grpc::StatusCode::UNAVAILABLE, "epmdx is shutting down"});
}

void WatchReactor::tryWriteLocked() {
  if (finished_ || !watch_.cursor.open()) {
    return;
  }
  if (write_pending_) {
    // A client that stopped reading: tell it to list again the moment it can no longer
    // resume, instead of holding the stream open until keepalive gives up.
    if (auto rejection = watch_.cursor.stalled()) {
      fellBehindLocked(*rejection);
    }
    return;
  }
  const auto now = steady_clock::now();
  const api::WatchStep step = watch_.cursor.next(now - last_write_ >= progress_interval_);
  using Kind = api::WatchStep::Kind;
  switch (step.kind) {
    case Kind::Nothing:
      return;  // Caught up, and no progress message due yet.
    case Kind::FellBehind:
      fellBehindLocked(step.rejection);
      return;
    case Kind::Initial:
      message_ = serialized(api::initialMessage(watch_.cursor.names(), step));
      break;
    case Kind::Coverage: {
      v1::WatchNodesResponse msg;
      msg.set_revision(step.revision);
      *msg.mutable_coverage() = *step.coverage;
      message_ = serialized(msg);
      break;
    }
    case Kind::Events:
    case Kind::Progress:  // A progress is a response with no events: the revision only.
      message_ = eventsMessage(step);
      break;
  }
  write_pending_ = true;
  last_write_ = now;
  StartWrite(&message_);
}

grpc::ByteBuffer WatchReactor::eventsMessage(const api::WatchStep& step) {
  std::vector<grpc::Slice> slices;
  slices.reserve(step.events.size() + 1);
  for (const auto& e : step.events) {
    slices.push_back(sharedSlice(encoded_.grpcEntry(e)));
  }
  slices.emplace_back(api::EncodedEvents::grpcRevisionField(step.revision));
  return grpc::ByteBuffer(slices.data(), slices.size());
}

void WatchReactor::fellBehindLocked(const registry::WatchRejection& rejection) {
  fell_behind_ = true;
  finishLocked(toStatus(api::WatchCursor::fellBehindError(watch_.cursor.revision(), rejection)));
}

void WatchReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  write_pending_ = false;
  if (!ok) {
    finishLocked({grpc::StatusCode::UNAVAILABLE, "write failed"});
    return;
  }
  tryWriteLocked();
}

void WatchReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  finishLocked(grpc::Status::CANCELLED);
}

void WatchReactor::finishLocked(grpc::Status status) {
  if (finished_) {
    return;
  }
  finished_ = true;
  finished_at_ = steady_clock::now();
  if (fell_behind_) {
    api_.countCut(api::Surface::Grpc);
  }
  Finish(std::move(status));
}

void WatchReactor::OnDone() {
  // Unsubscribe first and without mu_: when close() returns no wake-up runs or will run.
  watch_.cursor.close();
  if (in_set_) {
    set_.remove(this);
  }
  delete this;
}

WatchSet::WatchSet() {
  std::lock_guard<std::mutex> lock(mu_);
  armTickLocked();
}

WatchSet::~WatchSet() {
  std::unique_lock<std::mutex> lock(mu_);
  stop_ticker_ = true;
  alarm_.Cancel();
  // The alarm's callback runs (fired or cancelled) exactly once per Set: wait for it, so it
  // never touches a destroyed set.
  cv_.wait(lock, [this] { return !tick_armed_; });
}

void WatchSet::armTickLocked() {
  tick_armed_ = true;
  alarm_.Set(std::chrono::system_clock::now() + milliseconds(100),
             [this](bool fired) { onTick(fired); });
}

void WatchSet::onTick(bool fired) {
  // Progress messages: every 100 ms each stream checks whether one is due.
  std::lock_guard<std::mutex> lock(mu_);
  tick_armed_ = false;
  if (fired && !stop_ticker_) {
    for (auto* r : live_) {
      r->wake();
    }
    armTickLocked();
  }
  cv_.notify_all();
}

bool WatchSet::add(WatchReactor* r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) {
    return false;
  }
  live_.push_back(r);
  return true;
}

void WatchSet::remove(WatchReactor* r) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(live_.begin(), live_.end(), r);
  if (it != live_.end()) {
    *it = live_.back();
    live_.pop_back();
  }
  cv_.notify_all();
}

void WatchSet::shutdownAll() {
  std::lock_guard<std::mutex> lock(mu_);
  shutting_down_ = true;
  for (auto* r : live_) {
    r->shutdown();
  }
}

void WatchSet::waitEmpty(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return live_.empty(); });
}

}  // namespace epmdx::grpcapi
