#include "server/app/epmd_metrics_text.h"

#include "server/common/prometheus.h"

namespace epmdx::app {

void renderEpmdMetrics(const epmd::Metrics& e, std::string& out) {
  PrometheusWriter w;
  auto type = [](const char* t) { return PrometheusWriter::label("type", t); };
  w.family("epmdx_epmd_requests_total", "counter", "epmd requests, by type.");
  w.sample("epmdx_epmd_requests_total", e.req_alive2, type("alive2"));
  w.sample("epmdx_epmd_requests_total", e.req_port2, type("port_please2"));
  w.sample("epmdx_epmd_requests_total", e.req_names, type("names"));
  w.sample("epmdx_epmd_requests_total", e.req_dump, type("dump"));
  w.sample("epmdx_epmd_requests_total", e.req_kill, type("kill"));
  w.sample("epmdx_epmd_requests_total", e.req_stop, type("stop"));
  w.family("epmdx_epmd_lookups_total", "counter", "PORT_PLEASE2 lookups, by result.");
  w.sample("epmdx_epmd_lookups_total", e.lookups_found, PrometheusWriter::label("result", "found"));
  w.sample("epmdx_epmd_lookups_total", e.lookups_not_found,
           PrometheusWriter::label("result", "not_found"));
  w.family("epmdx_epmd_refused_packets_total", "counter",
           "Requests refused: from a non-local peer, or STOP without relaxed command check.");
  w.sample("epmdx_epmd_refused_packets_total", e.refused);
  w.family("epmdx_epmd_malformed_packets_total", "counter",
           "Packets closed without reply: bad length, unknown request, bad fields.");
  w.sample("epmdx_epmd_malformed_packets_total", e.malformed);
  w.family("epmdx_epmd_policy_refused_total", "counter",
           "Requests refused by a cluster's access policy (--names-from, --lookups-from), "
           "closed without reply, by type.");
  w.sample("epmdx_epmd_policy_refused_total", e.policy_refused_names, type("names"));
  w.sample("epmdx_epmd_policy_refused_total", e.policy_refused_dump, type("dump"));
  w.sample("epmdx_epmd_policy_refused_total", e.policy_refused_port2, type("port_please2"));
  w.family("epmdx_epmd_packet_timeouts_total", "counter",
           "Connections closed for not sending a whole request in time.");
  w.sample("epmdx_epmd_packet_timeouts_total", e.packet_timeouts);
  w.family("epmdx_epmd_connections_accepted_total", "counter", "epmd connections accepted.");
  w.sample("epmdx_epmd_connections_accepted_total", e.connections_accepted);
  w.family("epmdx_epmd_connections_open", "gauge",
           "epmd connections open now (registrations and requests in progress).");
  const int64_t open = e.connections_open.load();
  w.sample("epmdx_epmd_connections_open", open < 0 ? 0 : static_cast<uint64_t>(open));
  w.family("epmdx_epmd_connections_shed_total", "counter",
           "Connections closed early near the descriptor limit so registrations and lookups keep "
           "being answered: silent = never sent a byte (oldest first); partial = a partial "
           "request or a reply the client does not read; at_accept = accepted and closed at once "
           "because nothing else could be shed.");
  auto reason = [](const char* r) { return PrometheusWriter::label("reason", r); };
  w.sample("epmdx_epmd_connections_shed_total", e.shed_silent, reason("silent"));
  w.sample("epmdx_epmd_connections_shed_total", e.shed_partial, reason("partial"));
  w.sample("epmdx_epmd_connections_shed_total", e.shed_at_accept, reason("at_accept"));
  w.family("epmdx_epmd_accept_errors_total", "counter",
           "Failed accepts that shedding could not cure.");
  w.sample("epmdx_epmd_accept_errors_total", e.accept_errors);
  out += w.text();
}

}  // namespace epmdx::app
