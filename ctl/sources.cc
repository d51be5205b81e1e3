#include "ctl/sources.h"

#include <algorithm>
#include <cstdio>

#include "ctl/commands.h"
#include "ctl/status.h"
#include "ctl/yaml.h"
#include "server/api/json.h"

namespace epmdx::ctl {

std::string sourceStateName(v1::SourceState state) {
  switch (state) {
    case v1::LIVE:
      return "LIVE";
    case v1::STALE:
      return "STALE";
    case v1::UNAVAILABLE:
      return "UNAVAILABLE";
    case v1::GONE:
      return "GONE";
    default:
      return "UNKNOWN";  // A state newer than this client, or unset.
  }
}

std::vector<std::string> sourceHeader(bool wide) {
  std::vector<std::string> header{"NAME", "STATE", "SINCE", "NODES", "REVISION", "ADDRESS"};
  if (wide) {
    header.insert(header.end(), {"BOOT-EPOCH", "DISCOVERED-BY", "ADDRESSES"});
  }
  header.push_back("ERROR");
  return header;
}

std::vector<std::string> sourceRow(const v1::Source& source, bool wide, std::time_t now) {
  std::vector<std::string> row{source.name(),
                               sourceStateName(source.state()),
                               source.has_since() ? age(source.since(), now) : "-",
                               std::to_string(source.nodes()),
                               std::to_string(source.revision()),
                               source.address().empty() ? "-" : source.address()};
  if (wide) {
    std::string addresses;
    for (const auto& a : source.addresses()) {
      addresses += (addresses.empty() ? "" : ",") + a;
    }
    row.insert(row.end(), {std::to_string(source.boot_epoch()),
                           source.discovered_by().empty() ? "-" : source.discovered_by(),
                           addresses.empty() ? "-" : addresses});
  }
  row.push_back(source.last_error().empty() ? "-" : source.last_error());
  return row;
}

std::string sourcesTable(const v1::ListSourcesResponse& response, bool wide, bool headers,
                         std::time_t now) {
  std::vector<std::vector<std::string>> rows;
  if (headers) {
    rows.push_back(sourceHeader(wide));
  }
  for (const auto& s : response.sources()) {
    rows.push_back(sourceRow(s, wide, now));
  }
  std::string out = renderRows(rows);
  if (headers && response.discovery_size() > 0) {
    out += "\n";
    for (const auto& d : response.discovery()) {
      out += "discovery: " + d + "\n";
    }
  }
  return out;
}

namespace {

bool askSources(Connection& conn, v1::ListSourcesResponse& resp, grpc::Status& status) {
  status = conn.call([&](grpc::ClientContext* ctx) {
    return conn.fleet().ListSources(ctx, v1::ListSourcesRequest(), &resp);
  });
  return status.ok();
}

int notARelay(const std::string& why) {
  std::fprintf(stderr, "epmdxctl: %s: %s\n", kNotARelay, why.c_str());
  return ExitNotRelay;
}

}  // namespace

int listSources(Connection& conn, Format format, bool headers) {
  v1::ListSourcesResponse resp;
  grpc::Status status;
  if (!askSources(conn, resp, status)) {
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return notARelay("it has no sources");
    }
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
      for (const auto& s : resp.sources()) {
        emit(s.name() + "\n");
      }
      break;
    case Format::Table:
    case Format::Wide:
      emit(sourcesTable(resp, format == Format::Wide, headers, std::time(nullptr)));
      break;
  }
  return ExitOk;
}

int requireRelay(Connection& conn, const std::string& what) {
  v1::ListSourcesResponse resp;
  grpc::Status status;
  if (!askSources(conn, resp, status)) {
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return notARelay(what + " needs one");
    }
    return reportFailure(conn, status);
  }
  const std::string& wanted = conn.options().source;
  if (wanted.empty()) {
    return ExitOk;
  }
  std::string names;
  for (const auto& s : resp.sources()) {
    if (s.name() == wanted) {
      return ExitOk;
    }
    names += (names.empty() ? "" : ", ") + s.name();
  }
  // The relay would answer for no source at all (an empty list that reads as "no nodes").
  std::fprintf(stderr, "epmdxctl: no source named \"%s\" on this relay (%s)\n", wanted.c_str(),
               names.empty() ? "it has none yet" : ("its sources: " + names).c_str());
  return ExitNotFound;
}

namespace {

/// get/evict/lift without --cluster look in the default cluster: so do the hints.
std::string lookupCluster(const Connection& conn) {
  return conn.options().cluster.empty() ? "default" : conn.options().cluster;
}

void addOnce(std::vector<std::string>& found, const std::string& source) {
  if (!source.empty() && std::find(found.begin(), found.end(), source) == found.end()) {
    found.push_back(source);
  }
}

}  // namespace

std::vector<std::string> sourcesWithNode(Connection& conn, const std::string& name) {
  v1::ListNodesResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListNodesRequest req;
    req.set_cluster(lookupCluster(conn));
    return conn.registry().ListNodes(ctx, req, &resp);
  });
  std::vector<std::string> found;
  for (const auto& n : resp.nodes()) {
    if (status.ok() && n.name() == name) {
      addOnce(found, n.source());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::vector<std::string> sourcesWithHold(Connection& conn, const std::string& name) {
  v1::ListHoldsResponse resp;
  const auto status = conn.call([&](grpc::ClientContext* ctx) {
    v1::ListHoldsRequest req;
    req.set_cluster(lookupCluster(conn));
    return conn.registry().ListHolds(ctx, req, &resp);
  });
  std::vector<std::string> found;
  for (const auto& h : resp.holds()) {
    if (status.ok() && h.name() == name) {
      addOnce(found, h.source());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string sourcesHint(const std::string& name, const std::vector<std::string>& found) {
  if (found.empty()) {
    return "use --source=NAME (epmdxctl sources lists them)";
  }
  std::string where;
  for (const auto& s : found) {
    where += (where.empty() ? "" : ", ") + s;
  }
  return name + " is on " + where + ": use --source=" + found.front();
}

}  // namespace epmdx::ctl
