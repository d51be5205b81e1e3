#include "ctl/commands.h"

#include <cctype>

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "ctl/clusters.h"
#include "ctl/coverage.h"
#include "ctl/sources.h"
#include "ctl/status.h"
#include "ctl/watch.h"
#include "ctl/yaml.h"
#include "server/api/json.h"

namespace epmdx::ctl {

void emit(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int reportFailure(const Connection& conn, const grpc::Status& status, const std::string& hint) {
  std::fprintf(stderr, "epmdxctl: %s\n", conn.explain(status, hint).c_str());
  return exitFor(status.error_code());
}

/// The answer to an action: json/yaml as the message, else one line of `text`.
void printOne(const google::protobuf::Message& message, Format format, const std::string& text) {
  if (format == Format::Json) {
    emit(api::toJson(message) + "\n");
  } else if (format == Format::Yaml) {
    emit(toYaml(message));
  } else {
    emit(text + "\n");
  }
}

/// A list response: json/yaml as the message, names one a line, or a table of rows.
template <class Items, class NameFn, class RowFn>
void printList(const google::protobuf::Message& message, Format format, bool headers,
               const Items& items, std::vector<std::string> header, NameFn name, RowFn row) {
  switch (format) {
    case Format::Json:
      emit(api::toJson(message) + "\n");
      return;
    case Format::Yaml:
      emit(toYaml(message));
      return;
    case Format::Names:
      for (const auto& item : items) {
        emit(name(item) + "\n");
      }
      return;
    case Format::Table:
    case Format::Wide: {
      std::vector<std::vector<std::string>> rows;
      if (headers) {
        rows.push_back(std::move(header));
      }
      for (const auto& item : items) {
        rows.push_back(row(item));
      }
      emit(renderRows(rows));
      return;
    }
  }
}

namespace {

/// The failure of a call that looked for one name: without --cluster a NOT_FOUND in the
/// default cluster says where else the name is; without --source a relay's
/// FAILED_PRECONDITION (the name is on two sources) says which --source to give.
int reportLookupFailure(Connection& conn, const grpc::Status& status, const std::string& name) {
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
      conn.options().source.empty()) {
    // A daemon's precondition (--if-registration) has no source: the nodes it lists have none.
    const auto found = sourcesWithNode(conn, name);
    if (found.size() > 1) {
      return reportFailure(conn, status, sourcesHint(name, found));
    }
    return reportFailure(conn, status);
  }
  if (status.error_code() != grpc::StatusCode::NOT_FOUND || !conn.options().cluster.empty()) {
    return reportFailure(conn, status);  // The daemon's NOT_FOUND hints at a host part.
  }
  return reportFailure(conn, status, elsewhereHint(name, clustersHolding(conn, name)));
}

/// A relay's node whose source cannot be reached now: said on stderr, the answer stays as is.
void warnIfStale(const v1::Node& node) {
  if (node.stale()) {
    printWarnings({nodeName(node) + " is stale: its source " + node.source() +
                   " cannot be reached now; this is its last known registration"});
  }
}

}  // namespace

int listNodes(Connection& conn, const ListArgs& list_args) {
  ListArgs args = list_args;
  const bool table = args.format == Format::Table || args.format == Format::Wide;
  if (table && conn.options().cluster.empty()) {
    args.columns.cluster = clusterNames(conn).size() > 1;
  }
  v1::ListNodesResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListNodesRequest req;
    req.set_cluster(conn.options().cluster);
    req.set_source(conn.options().source);
    req.set_partial(args.partial);
    return conn.registry().ListNodes(ctx, req, &resp);
  });
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE && args.partial == v1::PARTIAL_ABORT) {
      return reportFailure(conn, status,
                           "--partial=abort: the relay cannot reach every source the list "
                           "covers; without it the list has their last known nodes, stale");
    }
    return reportFailure(conn, status);
  }
  // Before the answer, on stderr: stdout stays what scripts parse.
  printWarnings(coverageWarnings(resp.coverage()));
  if (resp.has_coverage() || fromRelay(resp.nodes(), !conn.options().source.empty())) {
    args.columns.source = conn.options().source.empty();
    args.columns.stale = true;
  }
  if (args.watch) {
    return watchList(conn, args, resp);
  }
  switch (args.format) {
    case Format::Json:
      emit(api::toJson(resp) + "\n");
      break;
    case Format::Yaml:
      emit(toYaml(resp));
      break;
    case Format::Names:
      for (const auto* n : byName(resp.nodes())) {
        emit(n->name() + "\n");
      }
      break;
    case Format::Table:
    case Format::Wide: {
      const bool wide = args.format == Format::Wide;
      std::vector<std::vector<std::string>> rows;
      if (args.headers) {
        rows.push_back(nodeHeader(wide, args.columns));
      }
      const std::time_t now = std::time(nullptr);
      for (const auto* n : byName(resp.nodes())) {
        rows.push_back(nodeRow(*n, wide, now, wide, args.columns));
      }
      emit(renderRows(rows));
      break;
    }
  }
  return ExitOk;
}

int getNode(Connection& conn, const std::string& name, Format format, bool headers) {
  v1::GetNodeRequest req;
  req.set_name(name);
  req.set_cluster(conn.options().cluster);
  req.set_source(conn.options().source);
  v1::Node node;
  const auto status =
      conn.call([&](grpc::ClientContext* ctx) { return conn.registry().GetNode(ctx, req, &node); });
  if (!status.ok()) {
    return reportLookupFailure(conn, status, name);
  }
  warnIfStale(node);
  switch (format) {
    case Format::Json:
      emit(api::toJson(node) + "\n");
      break;
    case Format::Yaml:
      emit(toYaml(node));
      break;
    case Format::Names:
      emit(node.name() + "\n");
      break;
    case Format::Table:
    case Format::Wide: {
      const bool wide = format == Format::Wide;
      NodeColumns columns;
      if (!node.source().empty()) {  // A relay's node: where it lives, and if it is current.
        columns.source = conn.options().source.empty();
        columns.stale = true;
      }
      std::vector<std::vector<std::string>> rows;
      if (headers) {
        rows.push_back(nodeHeader(wide, columns));
      }
      rows.push_back(nodeRow(node, wide, std::time(nullptr), true, columns));
      emit(renderRows(rows));
      break;
    }
  }
  return ExitOk;
}

int evictNode(Connection& conn, const std::string& name, std::optional<uint64_t> registration_id,
              const std::string& reason, Format format, uint32_t hold_seconds) {
  v1::EvictNodeRequest req;
  req.set_name(name);
  req.set_hold_seconds(hold_seconds);
  req.set_cluster(conn.options().cluster);
  req.set_source(conn.options().source);
  if (registration_id) {
    req.set_registration_id(*registration_id);
  }
  req.set_reason(reason);
  v1::EvictNodeResponse resp;
  const auto status = conn.call(
      [&](grpc::ClientContext* ctx) { return conn.registry().EvictNode(ctx, req, &resp); });
  if (!status.ok()) {
    return reportLookupFailure(conn, status, name);
  }
  std::string held;
  if (resp.has_hold()) {
    held = "; held for " + std::to_string(hold_seconds) + "s (until " +
           google::protobuf::util::TimeUtil::ToString(resp.hold().expires_at()) + ")";
  }
  printOne(resp, format,
           "evicted " + resp.node().name() +
               (resp.node().source().empty() ? "" : " on " + resp.node().source()) +
               " (registration " + std::to_string(resp.node().registration_id()) +
               ") at revision " + std::to_string(resp.revision()) + held);
  return ExitOk;
}

int listHolds(Connection& conn, Format format, bool headers) {
  v1::ListHoldsResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListHoldsRequest req;
    req.set_cluster(conn.options().cluster);
    req.set_source(conn.options().source);
    return conn.registry().ListHolds(ctx, req, &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
  }
  // A relay's holds are its sources' (one name may be held on two): SOURCE after NAME.
  const bool source_column = conn.options().source.empty() &&
                             std::any_of(resp.holds().begin(), resp.holds().end(),
                                         [](const v1::Hold& h) { return !h.source().empty(); });
  std::vector<std::string> header{"NAME", "CLUSTER", "EXPIRES-IN", "BY", "REASON"};
  if (source_column) {
    header.insert(header.begin() + 1, "SOURCE");
  }
  const std::time_t now = std::time(nullptr);
  printList(
      resp, format, headers, resp.holds(), header, [](const v1::Hold& h) { return h.name(); },
      [now, source_column](const v1::Hold& h) -> std::vector<std::string> {
        const int64_t left = std::max<int64_t>(0, h.expires_at().seconds() - now);
        std::vector<std::string> row{h.name(), h.cluster(), std::to_string(left) + "s", h.actor(),
                                     h.reason()};
        if (source_column) {
          row.insert(row.begin() + 1, h.source().empty() ? "-" : h.source());
        }
        return row;
      });
  return ExitOk;
}

namespace {

std::string lowerName(std::string name) {
  for (auto& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name;
}

/// DETAIL: the caller's reason for an eviction; for HEALTH_CHANGED and HOLDER_CHANGED the
/// new health (with the probe's error) or holder, as `watch` prints them; a release's helper
/// node says what it is (release_helper=rpc:demo), so its comings and goings read as such.
std::string eventDetail(const v1::NodeEvent& e) {
  const auto& n = e.node();
  if (!e.detail().empty()) {
    return e.detail();
  }
  if (const auto tag = releaseHelperTag(n); !tag.empty()) {
    return tag;
  }
  if (e.type() == v1::NodeEvent::HEALTH_CHANGED) {
    const auto& h = n.health();
    return "health=" + healthName(h) +
           (h.last_error().empty() || h.status() == v1::ALIVE
                ? std::string()
                : " error=\"" + h.last_error() + "\"");
  }
  if (e.type() == v1::NodeEvent::HOLDER_CHANGED) {
    return "holder=" + holderName(n.holder());
  }
  return "-";
}

/// A relay's event's source: its node's, else (a hold's event) its hold's.
const std::string& eventSource(const v1::NodeEvent& e) {
  return e.node().source().empty() ? e.hold().source() : e.node().source();
}

}  // namespace

int listEvents(Connection& conn, uint32_t limit, Format format, bool headers) {
  v1::ListEventsResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListEventsRequest req;
    req.set_cluster(conn.options().cluster);
    req.set_source(conn.options().source);
    req.set_limit(limit);
    return conn.registry().ListEvents(ctx, req, &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
  }
  // After NAME: SOURCE on a relay with none chosen (its events name nodes of several daemons),
  // then CLUSTER with several clusters and none chosen (app@host may be in two).
  const bool table = format == Format::Table || format == Format::Wide;
  const bool source_column =
      table && conn.options().source.empty() &&
      std::any_of(resp.events().begin(), resp.events().end(),
                  [](const v1::NodeEvent& e) { return !eventSource(e).empty(); });
  const bool cluster_column =
      table && conn.options().cluster.empty() && clusterNames(conn).size() > 1;
  std::vector<std::string> header{"TIME", "REVISION", "TYPE", "NAME", "REASON", "ACTOR", "DETAIL"};
  if (cluster_column) {
    header.insert(header.begin() + 4, "CLUSTER");
  }
  if (source_column) {
    header.insert(header.begin() + 4, "SOURCE");
  }
  printList(
      resp, format, headers, resp.events(), header,
      [](const v1::NodeEvent& e) { return e.node().name(); },
      [cluster_column, source_column](const v1::NodeEvent& e) -> std::vector<std::string> {
        std::vector<std::string> row{
            utcTime(e.time()),
            std::to_string(e.revision()),
            lowerName(v1::NodeEvent::Type_Name(e.type())),
            nodeName(e.node()),
            e.has_reason() ? lowerName(v1::UnregisterReason_Name(e.reason())) : "-",
            e.actor().empty() ? "-" : e.actor(),
            eventDetail(e)};
        if (cluster_column) {
          row.insert(row.begin() + 4,
                     e.node().cluster().empty() ? e.hold().cluster() : e.node().cluster());
        }
        if (source_column) {
          row.insert(row.begin() + 4, eventSource(e).empty() ? "-" : eventSource(e));
        }
        return row;
      });
  return ExitOk;
}

int liftHold(Connection& conn, const std::string& name, const std::string& reason, Format format) {
  v1::LiftHoldRequest req;
  req.set_name(name);
  req.set_cluster(conn.options().cluster);
  req.set_source(conn.options().source);
  req.set_reason(reason);
  v1::LiftHoldResponse resp;
  const auto status = conn.call(
      [&](grpc::ClientContext* ctx) { return conn.registry().LiftHold(ctx, req, &resp); });
  if (!status.ok()) {
    // Only a relay answers LiftHold so: the name is held on two sources.
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
        conn.options().source.empty()) {
      return reportFailure(conn, status, sourcesHint(name, sourcesWithHold(conn, name)));
    }
    return reportFailure(conn, status);
  }
  printOne(resp, format,
           "lifted the hold on " + resp.hold().name() + " at revision " +
               std::to_string(resp.revision()));
  return ExitOk;
}

int listClusters(Connection& conn, Format format, bool headers) {
  v1::ListClustersResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    return conn.registry().ListClusters(ctx, v1::ListClustersRequest(), &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
  }
  // A relay's clusters are its sources' (the same name on several): --source keeps one's.
  const std::string& source = conn.options().source;
  if (!source.empty()) {
    auto* clusters = resp.mutable_clusters();
    clusters->erase(std::remove_if(clusters->begin(), clusters->end(),
                                   [&](const v1::Cluster& c) { return c.source() != source; }),
                    clusters->end());
  }
  const bool source_column =
      source.empty() && std::any_of(resp.clusters().begin(), resp.clusters().end(),
                                    [](const v1::Cluster& c) { return !c.source().empty(); });
  std::vector<std::string> header{"CLUSTER",    "PORT",         "NODES",    "SERVING",
                                  "NAMES-FROM", "LOOKUPS-FROM", "ADDRESSES"};
  if (source_column) {
    header.insert(header.begin() + 1, "SOURCE");
  }
  printList(
      resp, format, headers, resp.clusters(), header, [](const v1::Cluster& c) { return c.name(); },
      [source_column](const v1::Cluster& c) -> std::vector<std::string> {
        std::string addresses;
        for (const auto& a : c.addresses()) {
          addresses += (addresses.empty() ? "" : ",") + a;
        }
        std::vector<std::string> row{c.name(),
                                     std::to_string(c.port()),
                                     std::to_string(c.nodes()),
                                     c.serving() ? "yes" : "no",
                                     c.names_from(),
                                     c.lookups_from(),
                                     addresses};
        if (source_column) {
          row.insert(row.begin() + 1, c.source().empty() ? "-" : c.source());
        }
        return row;
      });
  return ExitOk;
}

int health(Connection& conn) {
  grpc::health::v1::HealthCheckResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    return conn.health().Check(ctx, grpc::health::v1::HealthCheckRequest(), &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
  }
  const bool serving = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  emit(serving ? "SERVING\n" : "NOT_SERVING\n");
  return serving ? ExitOk : ExitUnavailable;
}

}  // namespace epmdx::ctl
