#include "server/api/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "epmdx/v1/registry.pb.h"
#include "server/api/convert.h"
#include "server/api/json.h"
#include "server/common/log.h"

namespace epmdx::api {
namespace {

std::string_view actionOf(const registry::Event& e) {
  switch (e.type) {
    case registry::EventType::Unregistered:
      return e.reason == registry::UnregisterReason::TakenOver     ? "takeover"
             : e.reason == registry::UnregisterReason::AutoEvicted ? "auto_evict"
                                                                   : "evict";
    case registry::EventType::Held:
      return "hold";
    case registry::EventType::HoldLifted:
      return "lift";
    case registry::EventType::HoldExpired:
      return "expire";
    case registry::EventType::Registered:
    case registry::EventType::HealthChanged:
    case registry::EventType::HolderChanged:
      break;
  }
  return "";
}

}  // namespace

AuditLog::AuditLog(registry::Registry& registry)
    : registry_(registry), names_(ClusterNames::of(registry)) {}

AuditLog::~AuditLog() {
  stop();
}

bool AuditLog::audited(const registry::Event& e) {
  switch (e.type) {
    case registry::EventType::Unregistered:
      return e.reason == registry::UnregisterReason::Evicted ||
             e.reason == registry::UnregisterReason::TakenOver ||
             e.reason == registry::UnregisterReason::AutoEvicted;
    case registry::EventType::Held:
    case registry::EventType::HoldLifted:
    case registry::EventType::HoldExpired:
      return true;
    case registry::EventType::Registered:
    case registry::EventType::HealthChanged:
    case registry::EventType::HolderChanged:
      break;
  }
  return false;
}

std::string AuditLog::line(const ClusterNames& names, const registry::Event& e) {
  v1::AuditRecord r;
  setTimestamp(e.time_ns, *r.mutable_time());
  r.set_revision(e.revision);
  r.set_action(std::string(actionOf(e)));
  r.set_actor(std::string(e.actor()));
  r.set_reason(std::string(e.detail()));
  r.set_cluster(names(e.registration->cluster));
  r.set_name(e.registration->node.name);
  toProto(names, *e.registration, *r.mutable_registration());
  if (e.hold) {
    toProto(names, *e.hold, *r.mutable_hold());
  }
  return toJson(r);
}

std::optional<std::string> AuditLog::start(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    return "cannot open the audit file " + path + ": " + std::strerror(errno);
  }
  auto watch = subscribe(0);  // From the next change: cannot be rejected.
  const registry::Revision delivered = watch->nextRevision() - 1;
  cursor_ = WatchCursor(std::move(watch), delivered, std::nullopt, names_);
  thread_ = std::thread([this] { run(); });
  return std::nullopt;
}

registry::WatchPtr AuditLog::subscribe(registry::Revision start) {
  auto watch = registry_.watch(start, [this] { wake(); });
  return watch.ok() ? std::move(watch.value()) : nullptr;
}

void AuditLog::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  pending_ = true;
  cv_.notify_one();
}

void AuditLog::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  cursor_.close();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void AuditLog::write(const std::string& text) {
  // One write per line with O_APPEND: lines never interleave with another writer's.
  const ssize_t n = ::write(fd_, text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size())) {
    log::error("audit file write failed",
               {{"file", path_}, {"error", n < 0 ? std::strerror(errno) : "short write"}});
  }
}

void AuditLog::run() {
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return pending_ || stop_; });
      pending_ = false;
      stopping = stop_;
    }
    drain();  // Including on the way out (a change the stop raced with).
    if (stopping) {
      return;
    }
  }
}

void AuditLog::drain() {
  for (;;) {
    const WatchStep step = cursor_.next();
    if (step.kind == WatchStep::Kind::FellBehind) {
      skipLost(step.rejection);
      continue;
    }
    if (step.kind != WatchStep::Kind::Events) {
      return;  // Read everything there is (no filter: never a step with `more`).
    }
    std::string text;
    for (const auto& e : step.events) {
      if (audited(e)) {
        text += line(names_, e);
        text += '\n';
      }
    }
    if (!text.empty()) {
      write(text);
    }
  }
}

void AuditLog::skipLost(registry::WatchRejection rejection) {
  // A burst larger than --history-size while the disk stalled: say so in the file, and
  // carry on from the oldest change kept. The history may move on again while the line is
  // written: then that gap gets its own line too, never a silent skip.
  for (;;) {
    writeLost(rejection.oldest_retained);
    auto watch = registry_.watch(rejection.oldest_retained, [this] { wake(); });
    if (watch.ok()) {
      cursor_.restart(std::move(watch.value()), rejection.oldest_retained - 1);
      return;
    }
    rejection = watch.error();
  }
}

void AuditLog::writeLost(registry::Revision oldest_retained) {
  v1::AuditRecord lost;
  lost.set_action("lost");
  lost.set_revision(oldest_retained);
  setTimestamp(registry_.nowNanos(), *lost.mutable_time());
  lost.set_reason("changes before revision " + std::to_string(oldest_retained) +
                  " were not written: the audit writer fell behind the kept history");
  write(toJson(lost) + "\n");
  log::error("audit file lost changes", {{"before_revision", oldest_retained}});
}

}  // namespace epmdx::api
