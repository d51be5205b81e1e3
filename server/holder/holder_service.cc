#include "server/holder/holder_service.h"

namespace epmdx::holder {

HolderService::HolderService(HolderResolver::Options options)
    : resolver_(std::move(options)), thread_([this] { run(); }) {}

HolderService::~HolderService() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void HolderService::resolve(std::vector<ConnectionKey> connections, Done done) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Request{std::move(connections), std::move(done)});
  }
  cv_.notify_all();
}

void HolderService::every(std::chrono::milliseconds interval, Connections connections, Done done) {
  {
    std::lock_guard lock(mu_);
    interval_ = interval;
    periodic_connections_ = interval.count() > 0 ? std::move(connections) : nullptr;
    periodic_done_ = interval.count() > 0 ? std::move(done) : nullptr;
    next_run_ = std::chrono::steady_clock::now();
  }
  cv_.notify_all();
}

void HolderService::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!queue_.empty()) {
      Request request = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();  // Resolve and call back without the lock: callers never wait on a scan.
      ResolveStats stats;
      auto holders = resolver_.resolve(request.connections, &stats);
      request.done(std::move(holders), stats);
      lock.lock();
      continue;
    }
    if (interval_.count() > 0 && std::chrono::steady_clock::now() >= next_run_) {
      Connections connections = periodic_connections_;
      Done done = periodic_done_;
      next_run_ = std::chrono::steady_clock::now() + interval_;
      lock.unlock();
      ResolveStats stats;
      auto holders = resolver_.resolve(connections(), &stats);
      done(std::move(holders), stats);
      lock.lock();
      continue;
    }
    if (interval_.count() > 0) {
      cv_.wait_until(lock, next_run_);
    } else {
      cv_.wait(lock);
    }
  }
}

}  // namespace epmdx::holder
