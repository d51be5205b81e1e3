#include "server/registry/cluster_table.h"

#include <algorithm>

namespace epmdx::registry {

namespace {
const std::string kDefaultName = "default";
const std::string kNoSource;
}  // namespace

ClusterTable::ClusterTable(std::vector<std::string> names, size_t capacity)
    : capacity_(std::max<size_t>(std::max<size_t>(capacity, names.size()), 1)),
      slots_(std::make_unique<Slot[]>(capacity_)) {
  if (names.empty()) {
    names.push_back(kDefaultName);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    slots_[i].name = std::move(names[i]);
  }
  size_.store(names.size(), std::memory_order_release);
}

const std::string& ClusterTable::name(ClusterId id) const {
  return id < size() ? slots_[id].name : kDefaultName;
}

const std::string& ClusterTable::source(ClusterId id) const {
  return id < size() ? slots_[id].source : kNoSource;
}

bool ClusterTable::stale(ClusterId id) const {
  return id < size() && slots_[id].stale.load(std::memory_order_relaxed);
}

void ClusterTable::setStale(ClusterId id, bool stale) {
  if (id < size()) {
    slots_[id].stale.store(stale, std::memory_order_relaxed);
  }
}

std::optional<ClusterId> ClusterTable::find(std::string_view name, std::string_view source) const {
  const size_t n = size();
  for (size_t i = 0; i < n; ++i) {
    if (slots_[i].name == name && slots_[i].source == source) {
      return static_cast<ClusterId>(i);
    }
  }
  return std::nullopt;
}

std::optional<ClusterId> ClusterTable::add(std::string_view name, std::string_view source) {
  std::lock_guard<std::mutex> lock(add_mu_);
  if (auto id = find(name, source)) {
    return id;
  }
  const size_t n = size();
  if (n >= capacity_ || n > 0xffff) {
    return std::nullopt;
  }
  slots_[n].name = std::string(name);
  slots_[n].source = std::string(source);
  size_.store(n + 1, std::memory_order_release);  // Publishes the slot written above.
  return static_cast<ClusterId>(n);
}

ClusterFilter ClusterFilter::select(std::shared_ptr<const ClusterTable> table,
                                    std::optional<std::string> cluster,
                                    std::optional<std::string> source) {
  ClusterFilter f;
  if (!cluster && !source) {
    return f;
  }
  f.table_ = std::move(table);
  f.cluster_ = std::move(cluster);
  f.source_ = std::move(source);
  return f;
}

bool ClusterFilter::matches(ClusterId id) const {
  if (one_) {
    return id == *one_;
  }
  if (!table_) {
    return true;
  }
  if (id >= cache_.size()) {
    cache_.resize(static_cast<size_t>(id) + 1, -1);
  }
  int8_t& hit = cache_[id];
  if (hit < 0) {
    hit =
        (!cluster_ || table_->name(id) == *cluster_) && (!source_ || table_->source(id) == *source_)
            ? 1
            : 0;
  }
  return hit == 1;
}

}  // namespace epmdx::registry
