#pragma once

// Each cluster's access policy (who may list and resolve names on its epmd port), from the
// command line and, when given, a file that SIGHUP re-reads. Both take the same directives:
//   names-from=[CLUSTER=]RULE     NAMES_REQ and DUMP_REQ
//   lookups-from=[CLUSTER=]RULE   PORT_PLEASE2_REQ
// RULE is `any`, `loopback` or CIDRs (see epmd::PeerRule); without CLUSTER= the directive is
// for the default cluster, and `*=` is every cluster. Later directives win; the file's come
// after the command line's.

#include <string>
#include <vector>

#include "server/common/result.h"
#include "server/epmd/access_policy.h"

namespace epmdx::app {

struct AccessDirective {
  std::string key;    // "names-from" or "lookups-from".
  std::string value;  // "[CLUSTER=]RULE".
  std::string where;  // For errors: "--names-from" or "FILE:LINE".
};

/// One policy per cluster (indexed like `cluster_names`), or the first error.
Result<std::vector<epmd::AccessPolicy>, std::string> buildAccessPolicies(
    const std::vector<std::string>& cluster_names, const std::vector<AccessDirective>& directives);

/// The directives of an access file: one per line, `#` comments, blank lines ignored.
Result<std::vector<AccessDirective>, std::string> readAccessFile(const std::string& path);

/// What the daemon puts in force: `directives` (the command line's), then those of
/// `access_file` when it is not empty, built into one policy per cluster. The option check
/// at start and every SIGHUP reload go through here, so both judge a file the same way.
Result<std::vector<epmd::AccessPolicy>, std::string> loadAccessPolicies(
    const std::vector<std::string>& cluster_names, std::vector<AccessDirective> directives,
    const std::string& access_file);

}  // namespace epmdx::app
