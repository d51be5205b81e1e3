#include "server/http/worker_pool.h"

#include <pthread.h>

namespace epmdx::http {

WorkerPool::WorkerPool(size_t threads, size_t wait_budget)
    : thread_count_(threads == 0 ? 1 : threads), wait_budget_(wait_budget) {}

WorkerPool::~WorkerPool() {
  stop();
}

void WorkerPool::start() {
  for (size_t i = 0; i < thread_count_; ++i) {
    threads_.emplace_back([this] {
      // Named, so the thread counts in /proc (and the tests that read them) say who is who.
      pthread_setname_np(pthread_self(), "epmdx-http-work");
      run();
    });
  }
}

bool WorkerPool::trySubmit(Job& job, size_t cost) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || threads_.empty()) {
      return false;
    }
    // A free thread takes it at once, whatever it costs; otherwise it waits if the work
    // already waiting leaves room for it.
    const bool runs_now = queue_.size() + busy_ < thread_count_;
    if (!runs_now && queued_cost_ + cost > wait_budget_) {
      return false;
    }
    queued_cost_ += cost;
    queue_.push_back(Waiting{std::move(job), cost});
  }
  ready_.notify_one();
  return true;
}

void WorkerPool::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) {
      return;
    }
    Job job = std::move(queue_.front().job);
    queued_cost_ -= queue_.front().cost;
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    Finish finish = job();
    job = nullptr;  // What it holds goes now, not with the next job.
    lock.lock();
    --busy_;
    lock.unlock();
    if (finish) {
      finish();
    }
    finish = nullptr;
    lock.lock();
  }
}

void WorkerPool::stop() {
  std::deque<Waiting> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
    queued_cost_ = 0;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    t.join();
  }
  threads_.clear();
  dropped.clear();  // After the join: nothing of theirs runs concurrently with these.
}

}  // namespace epmdx::http
