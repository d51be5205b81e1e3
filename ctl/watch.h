#pragma once

// Following the registry: `watch` and `list --watch`. Both resume after the last revision
// they printed when the connection breaks, list again when the daemon can no longer resume
// (a "resync"), and survive a daemon restart that changed the token (the token file is read
// again on UNAUTHENTICATED).

#include <cstdint>
#include <optional>
#include <string>

#include "ctl/commands.h"
#include "ctl/connection.h"

namespace epmdx::ctl {

/// What a follower does with the stream.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  /// A message of the initial state (asked for at the start or after a resync). The last
  /// one has initial_state_complete set.
  virtual void initial(const v1::WatchNodesResponse& message) = 0;
  virtual void event(const v1::NodeEvent& event) = 0;
  /// The daemon cannot resume from our revision; initial() follows with the current nodes.
  virtual void resync(const std::string& why) = 0;
};

struct WatchStart {
  std::optional<uint64_t> after;  // Resume after this revision...
  bool initial = false;           // ...or start from the current nodes, or from now.
  /// `after` came from the daemon (a list's revision), not from the user: if the daemon
  /// restarted since and calls it a future revision, list again instead of failing.
  bool after_from_daemon = false;
  /// A relay's coverage already told (the list `list --watch` printed): the stream's first
  /// coverage then says only what changed since.
  v1::Coverage printed{};
};

/// Follows until an error that retrying cannot fix; returns the exit code.
int follow(Connection& conn, WatchStart start, WatchSink& sink);

enum class WatchFormat { Text, Json, Yaml };

/// `watch`: one line (text, json) or document (yaml) per existing node and per event.
int watchEvents(Connection& conn, WatchStart start, WatchFormat format);

/// `list --watch`: `listed` printed as `list` would, then a row (or document) per event.
int watchList(Connection& conn, const ListArgs& args, const v1::ListNodesResponse& listed);

}  // namespace epmdx::ctl
