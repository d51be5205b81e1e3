#pragma once

// GET /metrics: the Prometheus text exposition format (version 0.0.4). No node name is
// ever a label: label sets stay bounded whatever the peers send.

#include <cstdint>
#include <string>

#include "server/epmd/metrics.h"
#include "server/registry/registry.h"

namespace epmdx::http {

struct MetricsInput {
  registry::RegistryStats registry;
  const epmd::Metrics* epmd = nullptr;
  size_t grpc_watchers = 0;
  size_t sse_watchers = 0;
  bool ready = false;
  std::string version;
};

std::string renderMetrics(const MetricsInput& in);

}  // namespace epmdx::http
