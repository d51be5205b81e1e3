#include "server/api/watch_cursor.h"

#include <algorithm>

#include "server/api/service.h"

namespace epmdx::api {
namespace {

WatchStep stepOf(WatchStep::Kind kind, registry::Revision revision) {
  WatchStep step;
  step.kind = kind;
  step.revision = revision;
  return step;
}

}  // namespace

WatchCursor::WatchCursor(registry::WatchPtr watch, registry::Revision delivered,
                         registry::ClusterFilter filter, ClusterNames names)
    : watch_(std::move(watch)),
      revision_(delivered),
      filter_(std::move(filter)),
      names_(std::move(names)) {}

void WatchCursor::startWithInitial(std::vector<registry::RegistrationPtr> nodes) {
  initial_ = std::move(nodes);
  initial_sent_ = 0;
  initial_pending_ = true;
}

void WatchCursor::restart(registry::WatchPtr watch, registry::Revision delivered) {
  watch_ = std::move(watch);
  revision_ = delivered;
  initial_.clear();
  initial_pending_ = false;
}

std::optional<WatchStep> WatchCursor::nextInitial() {
  if (!initial_pending_) {
    if (initial_.capacity() != 0) {
      initial_ = {};  // All sent: release the nodes.
    }
    return std::nullopt;
  }
  WatchStep step = stepOf(WatchStep::Kind::Initial, revision_);
  const size_t n = std::min(kMaxNodesPerMessage, initial_.size() - initial_sent_);
  step.nodes = std::span(initial_).subspan(initial_sent_, n);
  initial_sent_ += n;
  step.complete = initial_sent_ == initial_.size();
  initial_pending_ = !step.complete;
  return step;
}

WatchStep WatchCursor::next(bool progress_due) {
  if (fleet_ && coverage_sent_ != fleet_->coverageVersion()) {
    // Read the version first: a change racing with this read is told again next time.
    coverage_sent_ = fleet_->coverageVersion();
    coverage_ = fleet_->coverage(coverage_source_);
    WatchStep step = stepOf(WatchStep::Kind::Coverage, revision_);
    step.coverage = &coverage_;
    return step;
  }
  if (auto chunk = nextInitial()) {
    return *chunk;
  }
  if (!watch_) {
    return {};
  }
  for (size_t skipped = 0; skipped < kMaxSkippedBatches; ++skipped) {
    batch_.clear();
    auto polled = watch_->poll(kMaxEventsPerBatch, batch_);
    if (!polled.ok()) {
      WatchStep step = stepOf(WatchStep::Kind::FellBehind, revision_);
      step.rejection = polled.error();
      return step;
    }
    if (batch_.empty()) {
      return progress_due ? progress() : WatchStep{};
    }
    revision_ = batch_.back().revision;
    std::erase_if(batch_, [this](const registry::Event& e) { return !wants(e); });
    if (!batch_.empty()) {
      WatchStep step = stepOf(WatchStep::Kind::Events, revision_);
      step.events = batch_;
      return step;
    }
    // Only other clusters' changes: read on at once, not at the next wake-up.
  }
  WatchStep step = stepOf(WatchStep::Kind::Nothing, revision_);
  step.more = true;
  return step;
}

WatchStep WatchCursor::progress() {
  revision_ = std::max(revision_, watch_->nextRevision() - 1);
  return stepOf(WatchStep::Kind::Progress, revision_);
}

std::optional<registry::WatchRejection> WatchCursor::stalled() {
  if (!watch_ || !watch_->fellBehind()) {
    return std::nullopt;
  }
  std::vector<registry::Event> none;
  auto polled = watch_->poll(0, none);  // Reads nothing: only asks for the window.
  if (polled.ok()) {
    return std::nullopt;
  }
  return polled.error();
}

Error WatchCursor::fellBehindError(registry::Revision delivered,
                                   const registry::WatchRejection& r) {
  return Error{Code::OutOfRange,
               "watcher fell behind: changes after revision " + std::to_string(delivered) +
                   " are no longer kept (oldest " + std::to_string(r.oldest_retained) +
                   "): list again",
               Error::Window{r.oldest_retained, r.current}};
}

}  // namespace epmdx::api
