#include "server/http/metrics_text.h"

namespace epmdx::http {
namespace {

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, uint64_t value, const std::string& labels = {}) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{' + labels + '}';
    }
    out_ += ' ';
    out_ += std::to_string(value);
    out_ += '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string renderMetrics(const MetricsInput& in) {
  Writer w;
  const auto& r = in.registry;
  const auto& e = *in.epmd;
  w.family("epmdx_build_info", "gauge", "Build information; always 1.");
  w.sample("epmdx_build_info", 1, "version=\"" + in.version + "\"");
  w.family("epmdx_ready", "gauge",
           "1 while the epmd port is bound and the daemon is not draining.");
  w.sample("epmdx_ready", in.ready ? 1 : 0);

  w.family("epmdx_registered_nodes", "gauge", "Nodes registered now.");
  w.sample("epmdx_registered_nodes", r.nodes);
  w.family("epmdx_registry_revision", "gauge", "The registry's current revision.");
  w.sample("epmdx_registry_revision", r.revision);
  w.family("epmdx_registry_oldest_revision", "gauge",
           "The oldest revision a watch can still resume from.");
  w.sample("epmdx_registry_oldest_revision", r.oldest_retained);

  w.family("epmdx_registrations_total", "counter", "Successful ALIVE2 registrations.");
  w.sample("epmdx_registrations_total", r.registrations);
  w.family("epmdx_registration_errors_total", "counter",
           "ALIVE2 registrations refused with an error reply, by reason.");
  const char* errors[] = {"name_too_long", "invalid_name_encoding", "extra_too_long", "name_in_use",
                          "too_many_nodes"};
  for (int i = 0; i < 5; ++i) {
    w.sample("epmdx_registration_errors_total", r.register_errors[i],
             std::string("reason=\"") + errors[i] + "\"");
  }
  w.family("epmdx_unregistrations_total", "counter", "Registrations that ended, by reason.");
  const char* reasons[] = {"unspecified", "connection_closed", "stopped",
                           "killed",      "evicted",           "shutdown"};
  for (int i = 1; i < 6; ++i) {
    w.sample("epmdx_unregistrations_total", r.unregistrations[i],
             std::string("reason=\"") + reasons[i] + "\"");
  }
  w.family("epmdx_evictions_total", "counter", "Nodes evicted through the admin APIs.");
  w.sample("epmdx_evictions_total", r.unregistrations[4]);

  w.family("epmdx_epmd_requests_total", "counter", "epmd requests, by type.");
  w.sample("epmdx_epmd_requests_total", e.req_alive2, "type=\"alive2\"");
  w.sample("epmdx_epmd_requests_total", e.req_port2, "type=\"port_please2\"");
  w.sample("epmdx_epmd_requests_total", e.req_names, "type=\"names\"");
  w.sample("epmdx_epmd_requests_total", e.req_dump, "type=\"dump\"");
  w.sample("epmdx_epmd_requests_total", e.req_kill, "type=\"kill\"");
  w.sample("epmdx_epmd_requests_total", e.req_stop, "type=\"stop\"");
  w.family("epmdx_epmd_lookups_total", "counter", "PORT_PLEASE2 lookups, by result.");
  w.sample("epmdx_epmd_lookups_total", e.lookups_found, "result=\"found\"");
  w.sample("epmdx_epmd_lookups_total", e.lookups_not_found, "result=\"not_found\"");
  w.family("epmdx_epmd_refused_packets_total", "counter",
           "Requests refused: from a non-local peer, or STOP without relaxed command check.");
  w.sample("epmdx_epmd_refused_packets_total", e.refused);
  w.family("epmdx_epmd_malformed_packets_total", "counter",
           "Packets closed without reply: bad length, unknown request, bad fields.");
  w.sample("epmdx_epmd_malformed_packets_total", e.malformed);
  w.family("epmdx_epmd_packet_timeouts_total", "counter",
           "Connections closed for not sending a whole request in time.");
  w.sample("epmdx_epmd_packet_timeouts_total", e.packet_timeouts);
  w.family("epmdx_epmd_connections_accepted_total", "counter", "epmd connections accepted.");
  w.sample("epmdx_epmd_connections_accepted_total", e.connections_accepted);
  w.family("epmdx_epmd_connections_open", "gauge",
           "epmd connections open now (registrations and requests in progress).");
  const int64_t open = e.connections_open.load();
  w.sample("epmdx_epmd_connections_open", open < 0 ? 0 : static_cast<uint64_t>(open));
  w.family("epmdx_epmd_accept_errors_total", "counter", "Failed accepts (e.g. no descriptors).");
  w.sample("epmdx_epmd_accept_errors_total", e.accept_errors);

  w.family("epmdx_watchers", "gauge", "Open watch streams, by API.");
  w.sample("epmdx_watchers", in.grpc_watchers, "api=\"grpc\"");
  w.sample("epmdx_watchers", in.sse_watchers, "api=\"sse\"");
  return w.take();
}

}  // namespace epmdx::http
