#pragma once

// What a fleet relay says about the sources behind an answer (Coverage), told to people on
// stderr as `epmdxctl: warning: ...` lines, so that stdout stays the answer alone: a source
// that cannot be reached is never silently shown as having no nodes.

#include <string>
#include <vector>

#include "epmdx/v1/registry.pb.h"

namespace epmdx::ctl {

/// One line per unreachable source: the relay's own warnings, and for an unreachable source
/// it gave none for, "source NAME cannot be reached now; its nodes are the last known".
std::vector<std::string> coverageWarnings(const v1::Coverage& coverage);

/// Prints each line as "epmdxctl: warning: LINE" to stderr.
void printWarnings(const std::vector<std::string>& lines);

/// Prints each line as "epmdxctl: LINE" to stderr (CoverageNotes' lines).
void printNotes(const std::vector<std::string>& lines);

/// A watch's coverage over time: each message that carries one prints only what changed,
/// so a stream does not repeat a warning it already gave.
class CoverageNotes {
 public:
  CoverageNotes() = default;
  /// Starting from what was already printed (the list a `list --watch` starts with).
  explicit CoverageNotes(const v1::Coverage& printed);

  /// The lines to print for `coverage`: "warning: LINE" for each new warning, and "source
  /// NAME is live again" (or "... is no longer covered": discovery dropped it) for each
  /// source that was unreachable and no longer is.
  std::vector<std::string> update(const v1::Coverage& coverage);

 private:
  std::vector<std::string> warned_;
  std::vector<std::string> unreachable_;
};

}  // namespace epmdx::ctl
