#pragma once

// Counters of the epmd wire listener. Relaxed atomics: written on the epmd thread,
// read by the metrics endpoint; exact cross-counter consistency is not needed.

#include <atomic>
#include <cstdint>

namespace epmdx::epmd {

struct Metrics {
  using Counter = std::atomic<uint64_t>;
  Counter connections_accepted{0};
  std::atomic<int64_t> connections_open{0};
  Counter accept_errors{0};
  // Requests by type.
  Counter req_alive2{0}, req_port2{0}, req_names{0}, req_dump{0}, req_kill{0}, req_stop{0};
  // PORT_PLEASE2 results.
  Counter lookups_found{0}, lookups_not_found{0};
  // Packets refused: from a non-local peer, or STOP without relaxed command check.
  Counter refused{0};
  // Malformed packets: bad length, overrun, unknown code, bad ALIVE2/PORT2 fields.
  Counter malformed{0};
  Counter packet_timeouts{0};
  // Requests the cluster's access policy refused (closed without reply), by type.
  Counter policy_refused_names{0}, policy_refused_dump{0}, policy_refused_port2{0};
};

}  // namespace epmdx::epmd
