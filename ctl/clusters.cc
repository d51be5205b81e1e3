#include "ctl/clusters.h"

#include <algorithm>

namespace epmdx::ctl {

std::vector<std::string> clusterNames(Connection& conn) {
  v1::ListClustersResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    return conn.registry().ListClusters(ctx, v1::ListClustersRequest(), &resp);
  });
  std::vector<std::string> names;
  if (status.ok()) {
    for (const auto& c : resp.clusters()) {
      // A relay lists each source's clusters: "default" of every daemon is one name here.
      if (std::find(names.begin(), names.end(), c.name()) == names.end()) {
        names.push_back(c.name());
      }
    }
  }
  return names;
}

std::vector<std::string> clustersHolding(Connection& conn, const std::string& name) {
  std::vector<std::string> found;
  const auto names = clusterNames(conn);
  // The first is the default cluster, the one that was already asked.
  for (size_t i = 1; i < names.size(); ++i) {
    v1::GetNodeRequest req;
    req.set_name(name);
    req.set_cluster(names[i]);
    req.set_source(conn.options().source);
    v1::Node node;
    const auto status = conn.call(
        [&](grpc::ClientContext* ctx) { return conn.registry().GetNode(ctx, req, &node); });
    // FAILED_PRECONDITION: a relay has the name there on two sources.
    if (status.ok() || status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      found.push_back(names[i]);
    }
  }
  return found;
}

std::string elsewhereHint(const std::string& name, const std::vector<std::string>& found) {
  if (found.empty()) {
    return "";
  }
  std::string where;
  for (const auto& c : found) {
    where += (where.empty() ? "" : ", ") + c;
  }
  return name + " is not in the default cluster; it is in " + where +
         ": use --cluster=" + found.front();
}

}  // namespace epmdx::ctl
