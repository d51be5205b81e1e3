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
  // A fleet relay only: PARTIAL_ABORT refuses an answer that misses a source (--partial).
  v1::PartialResponse partial = v1::PARTIAL_WARN;
  // Set by listNodes: CLUSTER when the daemon has several clusters and --cluster chose none;
  // SOURCE and STALE when the server is a fleet relay (SOURCE unless --source chose one).
  NodeColumns columns{};
};

int listNodes(Connection& conn, const ListArgs& args);

/// A NOT_FOUND without --cluster names the other clusters where `name` lives; a relay's
/// FAILED_PRECONDITION without --source (the name is on two sources) names the sources.
/// A stale node (its source cannot be reached now) is told on stderr.
int getNode(Connection& conn, const std::string& name, Format format, bool headers);

/// `format`: Table prints one line of text; Json/Yaml the EvictNodeResponse.
/// `hold_seconds` > 0 keeps the name reserved that long.
int evictNode(Connection& conn, const std::string& name, std::optional<uint64_t> registration_id,
              const std::string& reason, Format format, uint32_t hold_seconds = 0);

/// The holds in force: NAME CLUSTER EXPIRES-IN BY REASON (a relay: of --source, or all).
int listHolds(Connection& conn, Format format, bool headers);

/// The recent changes the daemon's history holds (at most `limit`, 0: 200), oldest first:
/// TIME REVISION TYPE NAME REASON ACTOR DETAIL (after NAME: SOURCE on a relay, CLUSTER with
/// several clusters).
int listEvents(Connection& conn, uint32_t limit, Format format, bool headers);

/// Lifts the hold on `name` (in --cluster).
int liftHold(Connection& conn, const std::string& name, const std::string& reason, Format format);

int health(Connection& conn);

/// The daemon's clusters (epmd ports): name, port, nodes, serving, addresses. A relay's carry
/// their source (a SOURCE column; --source keeps that source's only).
int listClusters(Connection& conn, Format format, bool headers);

/// Prints "epmdxctl: TEXT" to stderr and returns the exit code for `status`.
int reportFailure(const Connection& conn, const grpc::Status& status, const std::string& hint = "");

/// Writes `text` to stdout at once: a watching script or pipe sees each line as it happens.
void emit(const std::string& text);

}  // namespace epmdx::ctl
