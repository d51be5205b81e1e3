#pragma once

// epmdx-fleet's --sources-file: the gRPC addresses of the epmdx daemons to follow, one per
// line, re-read on SIGHUP. A broken file is rejected whole (the relay keeps what it had)
// rather than read in part: a line left out would make its daemon look gone.

#include <cstddef>
#include <string>
#include <vector>

#include "server/common/result.h"

namespace epmdx::fleet {

/// A bigger file is refused (the relay re-reads it on every SIGHUP).
inline constexpr size_t kMaxSourcesFileBytes = 1 << 20;

/// A sources file: one "HOST:PORT" (gRPC address of an epmdx) per line; blank lines and "#"
/// comments (whole lines or line ends) ignored; whitespace trimmed. Returns the addresses in
/// file order, unique ("[::1]:4370" for IPv6), or an error naming the file and line
/// ("sources.txt:3: \"foo\" is not HOST:PORT (no port)").
Result<std::vector<std::string>, std::string> readSourcesFile(const std::string& path);

}  // namespace epmdx::fleet
