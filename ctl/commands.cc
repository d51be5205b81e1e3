#include "ctl/commands.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

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

int listNodes(Connection& conn, const ListArgs& args) {
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
        rows.push_back(nodeHeader(wide));
      }
      const std::time_t now = std::time(nullptr);
      for (const auto* n : byName(resp.nodes())) {
        rows.push_back(nodeRow(*n, wide, now));
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
    return reportFailure(conn, status);  // The daemon's NOT_FOUND hints at a host part.
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
      rows.push_back(nodeRow(node, wide, std::time(nullptr)));
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
    return reportFailure(conn, status);
  }
  if (format == Format::Json) {
    emit(api::toJson(resp) + "\n");
  } else if (format == Format::Yaml) {
    emit(toYaml(resp));
  } else {
    std::string held;
    if (resp.has_hold()) {
      held = "; held for " + std::to_string(hold_seconds) + "s (until " +
             google::protobuf::util::TimeUtil::ToString(resp.hold().expires_at()) + ")";
    }
    emit("evicted " + resp.node().name() + " (registration " +
         std::to_string(resp.node().registration_id()) + ") at revision " +
         std::to_string(resp.revision()) + held + "\n");
  }
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
  switch (format) {
    case Format::Json:
      emit(api::toJson(resp) + "\n");
      break;
    case Format::Yaml:
      emit(toYaml(resp));
      break;
    case Format::Names:
      for (const auto& h : resp.holds()) {
        emit(h.name() + "\n");
      }
      break;
    case Format::Table:
    case Format::Wide: {
      std::vector<std::vector<std::string>> rows;
      if (headers) {
        rows.push_back({"NAME", "CLUSTER", "EXPIRES-IN", "BY", "REASON"});
      }
      const std::time_t now = std::time(nullptr);
      for (const auto& h : resp.holds()) {
        const int64_t left = std::max<int64_t>(0, h.expires_at().seconds() - now);
        rows.push_back({h.name(), h.cluster(), std::to_string(left) + "s", h.actor(), h.reason()});
      }
      emit(renderRows(rows));
      break;
    }
  }
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
  if (format == Format::Json) {
    emit(api::toJson(resp) + "\n");
  } else if (format == Format::Yaml) {
    emit(toYaml(resp));
  } else {
    emit("lifted the hold on " + resp.hold().name() + " at revision " +
         std::to_string(resp.revision()) + "\n");
  }
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
  switch (format) {
    case Format::Json:
      emit(api::toJson(resp) + "\n");
      break;
    case Format::Yaml:
      emit(toYaml(resp));
      break;
    case Format::Names:
      for (const auto& c : resp.clusters()) {
        emit(c.name() + "\n");
      }
      break;
    case Format::Table:
    case Format::Wide: {
      std::vector<std::vector<std::string>> rows;
      if (headers) {
        rows.push_back({"CLUSTER", "PORT", "NODES", "SERVING", "ADDRESSES"});
      }
      for (const auto& c : resp.clusters()) {
        std::string addresses;
        for (const auto& a : c.addresses()) {
          addresses += (addresses.empty() ? "" : ",") + a;
        }
        rows.push_back({c.name(), std::to_string(c.port()), std::to_string(c.nodes()),
                        c.serving() ? "yes" : "no", addresses});
      }
      emit(renderRows(rows));
      break;
    }
  }
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
