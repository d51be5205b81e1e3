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

constexpr size_t kBatch = 256;

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

void setTimestamp(int64_t ns, google::protobuf::Timestamp& ts) {
  ts.set_seconds(ns / 1000000000);
  ts.set_nanos(static_cast<int32_t>(ns % 1000000000));
}

}  // namespace

AuditLog::AuditLog(registry::Registry& registry) : registry_(registry) {}

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

std::string AuditLog::line(const registry::Registry& registry, const registry::Event& e) {
  v1::AuditRecord r;
  setTimestamp(e.time_ns, *r.mutable_time());
  r.set_revision(e.revision);
  r.set_action(std::string(actionOf(e)));
  r.set_actor(std::string(e.actor()));
  r.set_reason(std::string(e.detail()));
  r.set_cluster(registry.clusterName(e.registration->cluster));
  r.set_name(e.registration->node.name);
  toProto(registry, *e.registration, *r.mutable_registration());
  if (e.hold) {
    toProto(registry, *e.hold, *r.mutable_hold());
  }
  return toJson(r);
}

std::optional<std::string> AuditLog::start(const std::string& path) {
  path_ = path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    return "cannot open the audit file " + path + ": " + std::strerror(errno);
  }
  subscribe(0);  // From the next change: cannot be rejected.
  thread_ = std::thread([this] { run(); });
  return std::nullopt;
}

bool AuditLog::subscribe(registry::Revision start) {
  auto watch = registry_.watch(start, [this] {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = true;
    cv_.notify_one();
  });
  if (!watch.ok()) {
    return false;
  }
  watch_ = std::move(watch.value());
  return true;
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
  watch_.reset();
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
  std::vector<registry::Event> events;
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return pending_ || stop_; });
      pending_ = false;
      stopping = stop_;
    }
    // Read everything there is, including on the way out (a change the stop raced with).
    for (;;) {
      events.clear();
      auto r = watch_->poll(kBatch, events);
      if (!r.ok()) {
        // Fell behind the history (a burst larger than --history-size while the disk
        // stalled): say so in the file, and carry on from the oldest change kept.
        const auto& rej = r.error();
        v1::AuditRecord lost;
        lost.set_action("lost");
        lost.set_revision(rej.oldest_retained);
        setTimestamp(registry_.nowNanos(), *lost.mutable_time());
        lost.set_reason("changes before revision " + std::to_string(rej.oldest_retained) +
                        " were not written: the audit writer fell behind the kept history");
        write(toJson(lost) + "\n");
        log::error("audit file lost changes", {{"before_revision", rej.oldest_retained}});
        if (!subscribe(rej.oldest_retained)) {
          subscribe(0);
        }
        continue;
      }
      std::string text;
      for (const auto& e : events) {
        if (audited(e)) {
          text += line(registry_, e);
          text += '\n';
        }
      }
      if (!text.empty()) {
        write(text);
      }
      if (r.value() < kBatch) {
        break;
      }
    }
    if (stopping) {
      return;
    }
  }
}

}  // namespace epmdx::api
