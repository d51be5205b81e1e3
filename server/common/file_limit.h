#pragma once

// The open-file soft limit raised to the hard one, for the daemon (thousands of held epmd
// connections) and the relay (a gRPC connection or two per source: 1,000 pods pass a soft
// limit of 1,024).

#include <sys/resource.h>

namespace epmdx {

/// Raises RLIMIT_NOFILE's soft limit to its hard limit. @return the soft limit now.
inline unsigned long raiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return 0;
  }
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return static_cast<unsigned long>(rl.rlim_cur);
}

}  // namespace epmdx
