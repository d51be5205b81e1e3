#pragma once

// What epmdxctl asks about the daemon's clusters for people who did not say --cluster: whether
// tables need a CLUSTER column (the same name may live in two clusters), and where a name the
// default cluster does not have lives instead.

#include <string>
#include <vector>

#include "ctl/connection.h"

namespace epmdx::ctl {

/// The daemon's cluster names, the default first (ListClusters), each once (a relay has each
/// source's); empty if it cannot be read.
std::vector<std::string> clusterNames(Connection& conn);

/// The clusters other than the default one that hold a node named `name` (GetNode in each).
std::vector<std::string> clustersHolding(Connection& conn, const std::string& name);

/// "app is not in the default cluster; it is in blue, green: use --cluster=blue", or "" when
/// `found` is empty.
std::string elsewhereHint(const std::string& name, const std::vector<std::string>& found);

}  // namespace epmdx::ctl
