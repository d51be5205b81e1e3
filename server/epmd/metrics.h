#pragma once

// Counters of the epmd wire listener. Relaxed atomics: written on the epmd thread,
// read by the metrics endpoint; exact cross-counter consistency is not needed.

#include <atomic>
#include <cstdint>

namespace epmdx::epmd {

struct Metrics {
  using Counter = std::atomic<uint64_t>;
  Counter connections_accepted{0};
  std::atomic<int64_t> connections_open{0};  // Sessions whose socket is open.
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
  // Connections closed early near the descriptor limit, so that registrations and lookups
  // keep being answered (epmdx_epmd_connections_shed_total{reason}): idle ones that never
  // sent a byte (oldest first), then ones holding a partial request or a reply the client
  // does not read ("partial"), and, when neither is left, new connections accepted and
  // closed at once with the reserve descriptor ("at_accept").
  Counter shed_silent{0}, shed_partial{0}, shed_at_accept{0};
};

}  // namespace epmdx::epmd
