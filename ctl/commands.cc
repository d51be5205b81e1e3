#include "ctl/commands.h"

#include <cctype>

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "ctl/clusters.h"
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

/// The failure of a call that looked in the default cluster because --cluster was not given:
/// a NOT_FOUND there says where else the name is.
int reportNotFoundHere(Connection& conn, const grpc::Status& status, const std::string& name) {
  if (status.error_code() != grpc::StatusCode::NOT_FOUND || !conn.options().cluster.empty()) {
    return reportFailure(conn, status);  // The daemon's NOT_FOUND hints at a host part.
  }
  return reportFailure(conn, status, elsewhereHint(name, clustersHolding(conn, name)));
}

}  // namespace

int listNodes(Connection& conn, const ListArgs& list_args) {
  ListArgs args = list_args;
  if ((args.format == Format::Table || args.format == Format::Wide) &&
      conn.options().cluster.empty()) {
    args.cluster_column = clusterNames(conn).size() > 1;
  }
  v1::ListNodesResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListNodesRequest req;
    req.set_cluster(conn.options().cluster);
    return conn.registry().ListNodes(ctx, req, &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
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
        rows.push_back(nodeHeader(wide, args.cluster_column));
      }
      const std::time_t now = std::time(nullptr);
      for (const auto* n : byName(resp.nodes())) {
        rows.push_back(nodeRow(*n, wide, now, wide, args.cluster_column));
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
  v1::Node node;
  const auto status =
      conn.call([&](grpc::ClientContext* ctx) { return conn.registry().GetNode(ctx, req, &node); });
  if (!status.ok()) {
    return reportNotFoundHere(conn, status, name);
  }
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
      std::vector<std::vector<std::string>> rows;
      if (headers) {
        rows.push_back(nodeHeader(wide));
      }
      rows.push_back(nodeRow(node, wide, std::time(nullptr), true));
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
  if (registration_id) {
    req.set_registration_id(*registration_id);
  }
  req.set_reason(reason);
  v1::EvictNodeResponse resp;
  const auto status = conn.call(
      [&](grpc::ClientContext* ctx) { return conn.registry().EvictNode(ctx, req, &resp); });
  if (!status.ok()) {
    return reportNotFoundHere(conn, status, name);
  }
  std::string held;
  if (resp.has_hold()) {
    held = "; held for " + std::to_string(hold_seconds) + "s (until " +
           google::protobuf::util::TimeUtil::ToString(resp.hold().expires_at()) + ")";
  }
  printOne(resp, format,
           "evicted " + resp.node().name() + " (registration " +
               std::to_string(resp.node().registration_id()) + ") at revision " +
               std::to_string(resp.revision()) + held);
  return ExitOk;
}

int listHolds(Connection& conn, Format format, bool headers) {
  v1::ListHoldsResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListHoldsRequest req;
    req.set_cluster(conn.options().cluster);
    return conn.registry().ListHolds(ctx, req, &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
  }
  const std::time_t now = std::time(nullptr);
  printList(
      resp, format, headers, resp.holds(), {"NAME", "CLUSTER", "EXPIRES-IN", "BY", "REASON"},
      [](const v1::Hold& h) { return h.name(); },
      [now](const v1::Hold& h) -> std::vector<std::string> {
        const int64_t left = std::max<int64_t>(0, h.expires_at().seconds() - now);
        return {h.name(), h.cluster(), std::to_string(left) + "s", h.actor(), h.reason()};
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

}  // namespace

int listEvents(Connection& conn, uint32_t limit, Format format, bool headers) {
  v1::ListEventsResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListEventsRequest req;
    req.set_cluster(conn.options().cluster);
    req.set_limit(limit);
    return conn.registry().ListEvents(ctx, req, &resp);
  });
  if (!status.ok()) {
    return reportFailure(conn, status);
  }
  // With several clusters and none chosen, CLUSTER follows NAME: app@host may be in two.
  const bool cluster_column = (format == Format::Table || format == Format::Wide) &&
                              conn.options().cluster.empty() && clusterNames(conn).size() > 1;
  std::vector<std::string> header{"TIME", "REVISION", "TYPE", "NAME", "REASON", "ACTOR", "DETAIL"};
  if (cluster_column) {
    header.insert(header.begin() + 4, "CLUSTER");
  }
  printList(
      resp, format, headers, resp.events(), header,
      [](const v1::NodeEvent& e) { return e.node().name(); },
      [cluster_column](const v1::NodeEvent& e) -> std::vector<std::string> {
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
        return row;
      });
  return ExitOk;
}

int liftHold(Connection& conn, const std::string& name, const std::string& reason, Format format) {
  v1::LiftHoldRequest req;
  req.set_name(name);
  req.set_cluster(conn.options().cluster);
  req.set_reason(reason);
  v1::LiftHoldResponse resp;
  const auto status = conn.call(
      [&](grpc::ClientContext* ctx) { return conn.registry().LiftHold(ctx, req, &resp); });
  if (!status.ok()) {
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
  printList(
      resp, format, headers, resp.clusters(),
      {"CLUSTER", "PORT", "NODES", "SERVING", "NAMES-FROM", "LOOKUPS-FROM", "ADDRESSES"},
      [](const v1::Cluster& c) { return c.name(); },
      [](const v1::Cluster& c) -> std::vector<std::string> {
        std::string addresses;
        for (const auto& a : c.addresses()) {
          addresses += (addresses.empty() ? "" : ",") + a;
        }
        return {c.name(),
                std::to_string(c.port()),
                std::to_string(c.nodes()),
                c.serving() ? "yes" : "no",
                c.names_from(),
                c.lookups_from(),
                addresses};
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
