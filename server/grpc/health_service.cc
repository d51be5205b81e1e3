#include "server/grpc/health_service.h"

#include "epmdx/v1/registry.grpc.pb.h"

namespace epmdx::grpcapi {

using grpc::health::v1::HealthCheckResponse;

/// One Watch stream: writes the status at start and on every change, one write in flight.
class HealthService::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService& owner, std::string service) : owner_(owner), service_(std::move(service)) {
    std::lock_guard<std::mutex> lock(owner_.mu_);
    if (owner_.shut_down_) {
      Finish({grpc::StatusCode::UNAVAILABLE, "shutting down"});
      return;
    }
    owner_.watchers_.insert(this);
    listed_ = true;
    changedLocked();
  }

  /// Requires owner_.mu_.
  void changedLocked() {
    want_ = owner_.statusOf(service_);
    if (!writing_ && (!sent_ || want_ != last_)) {
      writing_ = true;
      sent_ = true;
      last_ = want_;
      message_.set_status(want_);
      StartWrite(&message_);
    }
  }
  /// Requires owner_.mu_. A status not yet written (the drain's NOT_SERVING while the
  /// previous write is still in flight) goes out first: a prober must see the drain before
  /// the stream ends.
  void finishLocked() {
    finish_wanted_ = true;
    if (finished_ || writing_) {
      return;  // OnWriteDone finishes once the write in flight is done.
    }
    changedLocked();
    if (!writing_) {
      finished_ = true;
      Finish({grpc::StatusCode::UNAVAILABLE, "shutting down"});
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(owner_.mu_);
    writing_ = false;
    if (!ok) {
      if (!finished_) {
        finished_ = true;
        Finish({grpc::StatusCode::UNAVAILABLE, "shutting down"});
      }
      return;
    }
    if (finish_wanted_) {
      finishLocked();
    } else if (!finished_) {
      changedLocked();
    }
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(owner_.mu_);
    if (!finished_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
    }
  }
  void OnDone() override {
    {
      std::lock_guard<std::mutex> lock(owner_.mu_);
      if (listed_) {
        owner_.watchers_.erase(this);
      }
    }
    delete this;
  }

 private:
  HealthService& owner_;
  const std::string service_;
  bool listed_ = false;
  bool writing_ = false;
  bool sent_ = false;
  bool finished_ = false;
  bool finish_wanted_ = false;
  Status last_ = HealthCheckResponse::UNKNOWN;
  Status want_ = HealthCheckResponse::UNKNOWN;
  HealthCheckResponse message_;
};

HealthService::Status HealthService::statusOf(const std::string& service) const {
  if (!service.empty() && service != v1::Registry::service_full_name()) {
    return HealthCheckResponse::SERVICE_UNKNOWN;
  }
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx,
                                               const grpc::health::v1::HealthCheckRequest* req,
                                               HealthCheckResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  std::lock_guard<std::mutex> lock(mu_);
  const Status s = statusOf(req->service());
  if (s == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish({grpc::StatusCode::NOT_FOUND, "unknown service \"" + req->service() + "\""});
    return reactor;
  }
  resp->set_status(s);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext*, const grpc::health::v1::HealthCheckRequest* req) {
  return new Watcher(*this, req->service());
}

void HealthService::setServing(bool serving) {
  std::lock_guard<std::mutex> lock(mu_);
  serving_ = serving;
  for (auto* w : watchers_) {
    w->changedLocked();
  }
}

void HealthService::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  for (auto* w : watchers_) {
    w->finishLocked();
  }
}

}  // namespace epmdx::grpcapi
