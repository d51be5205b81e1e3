#include "server/http/worker_pool.h"

#include <pthread.h>

namespace epmdx::http {

WorkerPool::WorkerPool(size_t threads, size_t queue_limit)
    : thread_count_(threads == 0 ? 1 : threads), queue_limit_(queue_limit) {}

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

bool WorkerPool::trySubmit(Job& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Jobs waiting or being run: at most one per thread plus the queue's limit.
    if (stopping_ || threads_.empty() || queue_.size() + busy_ + 1 > thread_count_ + queue_limit_) {
      return false;
    }
    queue_.push_back(std::move(job));
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
    Job job = std::move(queue_.front());
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
  std::deque<Job> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    t.join();
  }
  threads_.clear();
  dropped.clear();  // After the join: nothing of theirs runs concurrently with these.
}

}  // namespace epmdx::http
