#pragma once

// The short-lived nodes an Elixir release's `bin/APP` script starts to run one command on
// the release's node: `rpc`, `pid`, `stop` and `restart` start a hidden node named
// "rpc-XXXX-NODE", `remote` one named "rem-XXXX-NODE" (XXXX: two random bytes as four hex
// digits, NODE: RELEASE_NODE's name part). It registers with epmd, runs its command and leaves
// (registered for about 0.1 s; the command takes about 0.4 s). OTP registers hidden nodes as normal
// ones (node type 77), so the name is all epmd ever learns, and it is known at the registration:
// the mark needs no holder look.

#include <optional>
#include <string>
#include <string_view>

namespace epmdx {

struct ReleaseHelper {
  std::string command;  // "rpc" (rpc, pid, stop, restart) or "remote".
  std::string target;   // The node it works on: "demo" for "rpc-8a18-demo".
  bool operator==(const ReleaseHelper&) const = default;
};

/// The helper a registered name says it is, or nullopt for any other name.
std::optional<ReleaseHelper> releaseHelper(std::string_view name);

}  // namespace epmdx
