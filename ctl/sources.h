#pragma once

// epmdxctl and the fleet relay (epmdx-fleet): `sources` (Fleet.ListSources), the check that
// --source and --partial are sent to a relay at all (a daemon would ignore them and answer
// for itself), and where a name that lives on two sources is.

#include <ctime>
#include <string>
#include <vector>

#include "ctl/connection.h"
#include "ctl/output.h"

namespace epmdx::ctl {

/// What epmdxctl says when a daemon answers Fleet.ListSources with UNIMPLEMENTED.
inline constexpr const char* kNotARelay = "this server is not a fleet relay (epmdx-fleet)";

/// "LIVE", "STALE", "UNAVAILABLE", "GONE": the names the JSON prints.
std::string sourceStateName(v1::SourceState state);

/// NAME STATE SINCE NODES REVISION ADDRESS ERROR; `wide` puts BOOT-EPOCH DISCOVERED-BY
/// ADDRESSES before ERROR (the last column: it is free text).
std::vector<std::string> sourceHeader(bool wide);
/// SINCE is an age ("5m", as list's AGE), "-" when unknown; ERROR "-" when there is none.
std::vector<std::string> sourceRow(const v1::Source& source, bool wide, std::time_t now);

/// The table of `sources` (with `headers`: the header row, and the relay's discovery lines
/// after a blank line; scripts use --no-headers or -o json).
std::string sourcesTable(const v1::ListSourcesResponse& response, bool wide, bool headers,
                         std::time_t now);

/// `epmdxctl sources`; a daemon: kNotARelay and ExitNotRelay.
int listSources(Connection& conn, Format format, bool headers);

/// ExitOk when the server is a relay and, with --source, has a source by that name; else
/// prints why (kNotARelay, the relay's sources, or the call's failure) and returns the exit
/// code. `what` says which option needed a relay ("--source").
int requireRelay(Connection& conn, const std::string& what);

/// The sources on which a relay lists a node named `name` (in --cluster, else the default
/// cluster), sorted; empty on a daemon, whose nodes have no source.
std::vector<std::string> sourcesWithNode(Connection& conn, const std::string& name);
/// The same for the holds on `name` (LiftHold's two-sources case).
std::vector<std::string> sourcesWithHold(Connection& conn, const std::string& name);

/// "app is on pod-1, pod-2: use --source=pod-1", or, when `found` is empty, "use
/// --source=NAME (epmdxctl sources lists them)".
std::string sourcesHint(const std::string& name, const std::vector<std::string>& found);

}  // namespace epmdx::ctl
