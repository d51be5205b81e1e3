#include "server/http/metrics_text.h"

#include "server/common/prometheus.h"

namespace epmdx::http {

namespace {

void daemonFamilies(const MetricsInput& in, PrometheusWriter& w) {
  const auto& r = in.registry;
  w.family("epmdx_build_info", "gauge", "Build information; always 1.");
  w.sample("epmdx_build_info", 1, PrometheusWriter::label("version", in.version));
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
}

void clusterFamilies(const MetricsInput& in, PrometheusWriter& w) {
  const auto& r = in.registry;
  w.family("epmdx_cluster_nodes", "gauge", "Nodes registered now, by cluster (epmd port).");
  for (size_t i = 0; i < in.cluster_names.size() && i < r.nodes_by_cluster.size(); ++i) {
    w.sample("epmdx_cluster_nodes", r.nodes_by_cluster[i],
             PrometheusWriter::label("cluster", in.cluster_names[i]));
  }
  w.family("epmdx_cluster_registrations_total", "counter",
           "Successful ALIVE2 registrations, by cluster (epmd port).");
  for (size_t i = 0; i < in.cluster_names.size() && i < r.registrations_by_cluster.size(); ++i) {
    w.sample("epmdx_cluster_registrations_total", r.registrations_by_cluster[i],
             PrometheusWriter::label("cluster", in.cluster_names[i]));
  }
}

void registrationFamilies(const registry::RegistryStats& r, PrometheusWriter& w) {
  w.family("epmdx_registrations_total", "counter", "Successful ALIVE2 registrations.");
  w.sample("epmdx_registrations_total", r.registrations);
  w.family("epmdx_registration_errors_total", "counter",
           "ALIVE2 registrations refused with an error reply, by reason.");
  for (size_t i = 0; i < registry::kRegisterErrorCount; ++i) {
    w.sample("epmdx_registration_errors_total", r.register_errors[i],
             PrometheusWriter::label("reason",
                                     registry::toString(static_cast<registry::RegisterError>(i))));
  }
  w.family("epmdx_unregistrations_total", "counter", "Registrations that ended, by reason.");
  for (size_t i = 0; i < registry::kUnregisterReasonCount; ++i) {
    const auto reason = static_cast<registry::UnregisterReason>(i);
    if (reason == registry::UnregisterReason::Unspecified) {
      continue;  // Never recorded: every removal has a reason.
    }
    w.sample("epmdx_unregistrations_total", r.unregistrations[i],
             PrometheusWriter::label("reason", registry::toString(reason)));
  }
  w.family("epmdx_evictions_total", "counter", "Nodes evicted through the admin APIs.");
  w.sample("epmdx_evictions_total",
           r.unregistrations[static_cast<size_t>(registry::UnregisterReason::Evicted)]);
}

void deadNamesFamilies(const registry::RegistryStats& r, PrometheusWriter& w) {
  w.family("epmdx_holds", "gauge", "Names reserved now after evictions (holds in force).");
  w.sample("epmdx_holds", r.holds);
  w.family("epmdx_holds_total", "counter", "Holds placed, and how they ended, by event.");
  w.sample("epmdx_holds_total", r.holds_placed, PrometheusWriter::label("event", "placed"));
  w.sample("epmdx_holds_total", r.holds_lifted, PrometheusWriter::label("event", "lifted"));
  w.sample("epmdx_holds_total", r.holds_expired, PrometheusWriter::label("event", "expired"));

  w.family("epmdx_nodes_by_health", "gauge",
           "Registered nodes by the liveness probe's verdict (unknown: not probed).");
  for (size_t i = 0; i < registry::kHealthStatusCount; ++i) {
    const auto label = PrometheusWriter::label(
        "health", registry::toString(static_cast<registry::HealthStatus>(i)));
    w.sample("epmdx_nodes_by_health", r.nodes_by_health[i], label);
  }
  w.family("epmdx_health_changes_total", "counter",
           "Changes of a node's health, by the status changed to.");
  for (size_t i = 1; i < registry::kHealthStatusCount; ++i) {
    w.sample("epmdx_health_changes_total", r.health_changes[i],
             PrometheusWriter::label("health",
                                     registry::toString(static_cast<registry::HealthStatus>(i))));
  }
  w.family("epmdx_holder_changes_total", "counter",
           "HOLDER_CHANGED events: a registration's holder found, or found different.");
  w.sample("epmdx_holder_changes_total", r.holder_changes);
}

void surfaceFamilies(const MetricsInput& in, PrometheusWriter& w) {
  w.family("epmdx_watchers", "gauge", "Open watch streams, by API.");
  w.sample("epmdx_watchers", in.grpc_watchers, PrometheusWriter::label("api", "grpc"));
  w.sample("epmdx_watchers", in.sse_watchers, PrometheusWriter::label("api", "sse"));
  w.family("epmdx_watch_streams_cut_total", "counter",
           "Watch streams ended because the history moved past their cursor (the client "
           "lists again), by API; a gRPC one whose client did not read even its status is "
           "cancelled a second later.");
  w.sample("epmdx_watch_streams_cut_total", in.grpc_cut, PrometheusWriter::label("api", "grpc"));
  w.sample("epmdx_watch_streams_cut_total", in.sse_cut, PrometheusWriter::label("api", "sse"));
  w.family("epmdx_http_connections_open", "gauge", "HTTP connections open now.");
  w.sample("epmdx_http_connections_open", in.http_connections);
}

}  // namespace

void renderMetrics(const MetricsInput& in, std::string& out) {
  PrometheusWriter w;
  daemonFamilies(in, w);
  clusterFamilies(in, w);
  registrationFamilies(in.registry, w);
  deadNamesFamilies(in.registry, w);
  surfaceFamilies(in, w);
  out += w.text();
}

}  // namespace epmdx::http
