#pragma once

// GET /metrics: the registry's and the admin surfaces' families; the rest of the daemon (the
// epmd listener) adds its own through DaemonStatus::metrics, so this layer needs no epmd
// types. No node name is ever a label.

#include <cstdint>
#include <string>
#include <vector>

#include "server/registry/registry.h"

namespace epmdx::http {

struct MetricsInput {
  registry::RegistryStats registry;
  std::vector<std::string> cluster_names;  // Indexed by ClusterId: labels from configuration.
  size_t grpc_watchers = 0;
  size_t sse_watchers = 0;
  uint64_t grpc_cut = 0;  // Streams cut for falling behind the history.
  uint64_t sse_cut = 0;
  size_t http_connections = 0;
  bool ready = false;
  std::string version;
};

/// Appends the families to `out`.
void renderMetrics(const MetricsInput& in, std::string& out);

}  // namespace epmdx::http
