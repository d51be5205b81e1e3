#pragma once

// A WatchNodes stream through gRPC's callback API, for the tests that stall watchers on
// purpose: a reading one reads from the start, a stalled one reads nothing until resume(), so
// the server's data piles up behind it. Each message read goes to `on_message` (from gRPC's
// thread). The first read of a stalled stream starts outside a reaction, so the call is held
// open (AddHold) until resume() or cancel(): without the hold, the stream's end could finish
// the call, and free it in gRPC, before that read.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "epmdx/v1/registry.grpc.pb.h"

namespace epmdx::testing {

class GrpcWatchStream final : public grpc::ClientReadReactor<v1::WatchNodesResponse> {
 public:
  using OnMessage = std::function<void(const v1::WatchNodesResponse&)>;

  GrpcWatchStream(v1::Registry::Stub& stub, const std::string& bearer,
                  v1::WatchNodesRequest request, bool read_now, OnMessage on_message)
      : request_(std::move(request)), on_message_(std::move(on_message)) {
    ctx_.AddMetadata("authorization", bearer);
    stub.async()->WatchNodes(&ctx_, &request_, this);
    if (read_now) {
      StartRead(&msg_);
    } else {
      AddHold();
      held_ = true;
    }
    StartCall();
  }

  /// A stalled stream starts reading.
  void resume() {
    StartRead(&msg_);
    release();
  }
  void cancel() {
    ctx_.TryCancel();
    release();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      return;  // OnDone follows with the status.
    }
    if (on_message_) {
      on_message_(msg_);
    }
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = s;
    done_at_ = std::chrono::steady_clock::now();
    done_ = true;
    cv_.notify_all();
  }

  bool waitDone(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return done_; });
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  grpc::Status status() {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  std::chrono::steady_clock::time_point doneAt() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_at_;
  }

 private:
  void release() {
    if (held_.exchange(false)) {
      RemoveHold();
    }
  }

  grpc::ClientContext ctx_;
  v1::WatchNodesRequest request_;
  v1::WatchNodesResponse msg_;
  OnMessage on_message_;
  std::atomic<bool> held_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
  std::chrono::steady_clock::time_point done_at_;
};

}  // namespace epmdx::testing
