#pragma once

// The epmd listener's counters as Prometheus families, for GET /metrics. Lives in the app
// layer, which links both sides, so the HTTP adapter needs no epmd types.

#include <string>

#include "server/epmd/metrics.h"

namespace epmdx::app {

void renderEpmdMetrics(const epmd::Metrics& m, std::string& out);

}  // namespace epmdx::app
