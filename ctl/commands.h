#pragma once

// The one-shot commands: list, get, evict, health. Each returns the process exit code and
// prints errors to stderr itself.

#include <cstdint>
#include <optional>
#include <string>

#include "ctl/connection.h"
#include "ctl/output.h"

namespace epmdx::ctl {

struct ListArgs {
  Format format = Format::Table;
  bool headers = true;
  bool watch = false;
  // Set by listNodes: the daemon has several clusters and --cluster chose none, so the short
  // table gains a CLUSTER column.
  bool cluster_column = false;
};

int listNodes(Connection& conn, const ListArgs& args);

/// A NOT_FOUND without --cluster names the other clusters where `name` lives.
int getNode(Connection& conn, const std::string& name, Format format, bool headers);

/// `format`: Table prints one line of text; Json/Yaml the EvictNodeResponse.
/// `hold_seconds` > 0 keeps the name reserved that long.
int evictNode(Connection& conn, const std::string& name, std::optional<uint64_t> registration_id,
              const std::string& reason, Format format, uint32_t hold_seconds = 0);

/// The holds in force: NAME CLUSTER EXPIRES-IN BY REASON.
int listHolds(Connection& conn, Format format, bool headers);

/// The recent changes the daemon's history holds (at most `limit`, 0: 200), oldest first:
/// TIME REVISION TYPE NAME REASON ACTOR DETAIL (CLUSTER after NAME with several clusters).
int listEvents(Connection& conn, uint32_t limit, Format format, bool headers);

/// Lifts the hold on `name` (in --cluster).
int liftHold(Connection& conn, const std::string& name, const std::string& reason, Format format);

int health(Connection& conn);

/// The daemon's clusters (epmd ports): name, port, nodes, serving, addresses.
int listClusters(Connection& conn, Format format, bool headers);

/// Prints "epmdxctl: TEXT" to stderr and returns the exit code for `status`.
int reportFailure(const Connection& conn, const grpc::Status& status, const std::string& hint = "");

/// Writes `text` to stdout at once: a watching script or pipe sees each line as it happens.
void emit(const std::string& text);

}  // namespace epmdx::ctl
