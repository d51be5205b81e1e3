#pragma once

// How epmdxctl prints nodes: -o table|wide|json|yaml|names.

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "epmdx/v1/registry.pb.h"

namespace epmdx::ctl {

enum class Format { Table, Wide, Json, Yaml, Names };

std::optional<Format> parseFormat(const std::string& text);

/// "alive", "unresponsive(N)" (N failed probes in a row), "unknown".
std::string healthName(const v1::NodeHealth& health);
/// "PID/COMMAND(STATE)" of the first holder, else the status ("not_visible", "unknown", ...).
std::string holderName(const v1::Holder& holder);
/// "release_helper=rpc:demo" for the short-lived rpc-XXXX-demo / rem-XXXX-demo nodes an Elixir
/// release's bin/demo starts (Node.release_helper), empty for every other node.
std::string releaseHelperTag(const v1::Node& node);
/// The optional columns of a node table, each shown only when it tells something.
struct NodeColumns {
  /// CLUSTER after NAME (SOURCE) in the short table: a daemon with several clusters, where one
  /// name may be in two of them. Wide tables always have CLUSTER.
  bool cluster = false;
  /// A fleet relay's nodes, whose identity is (source, cluster, name): SOURCE after NAME
  /// (short) or before CLUSTER (wide), unless --source chose one...
  bool source = false;
  /// ...and STALE last, yes or no: the node's source cannot be reached now and this is its
  /// last known registration. A column, not a mark on the name, so that NAME stays the epmd
  /// name scripts match and every row has as many fields.
  bool stale = false;
};
/// The column headers: NAME PORT TYPE AGE, and with `wide` CLUSTER VERSIONS CREATION
/// REGISTERED-AT ID PEER HEALTH HOLDER as well; `columns` adds the optional ones.
std::vector<std::string> nodeHeader(bool wide, NodeColumns columns = {});
/// NAME is name@host (nodeName) with `with_host`, as Erlang users know the node; the bare
/// epmd name otherwise (the short table, which `-o names` and scripts match).
std::vector<std::string> nodeRow(const v1::Node& node, bool wide, std::time_t now, bool with_host,
                                 NodeColumns columns = {});
inline std::vector<std::string> nodeRow(const v1::Node& node, bool wide, std::time_t now) {
  return nodeRow(node, wide, now, wide);
}
/// A relay's answer: its nodes carry their source (or `source_chosen`: --source was given).
bool fromRelay(const google::protobuf::RepeatedPtrField<v1::Node>& nodes, bool source_chosen);
/// "name@host" (Node.host), or the bare name when the daemon does not know the host.
std::string nodeName(const v1::Node& node);

/// "42s", "5m", "3h", "2d", as kubectl shows ages.
std::string age(const google::protobuf::Timestamp& at, std::time_t now);
/// RFC 3339 UTC to the second ("2026-11-27T07:34:16Z").
std::string utcTime(const google::protobuf::Timestamp& at);
/// "normal", "hidden", or "type N" for a type epmd does not know.
std::string typeName(const v1::Node& node);

/// Left-aligned columns two spaces apart, widths in UTF-8 code points. `widths` (may be
/// null) carries the column widths from one call to the next, so the rows a watch adds
/// later line up with the first ones.
std::string renderRows(const std::vector<std::vector<std::string>>& rows,
                       std::vector<size_t>* widths = nullptr);

/// The nodes ordered by name, as people read tables and name lists (JSON and YAML keep the
/// daemon's order: they are the API's message as it is).
std::vector<const v1::Node*> byName(const google::protobuf::RepeatedPtrField<v1::Node>& nodes);

/// The width of `text` in code points.
size_t displayWidth(const std::string& text);

}  // namespace epmdx::ctl
