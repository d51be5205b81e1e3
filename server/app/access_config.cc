#include "server/app/access_config.h"

#include <fstream>

namespace epmdx::app {

Result<std::vector<epmd::AccessPolicy>, std::string> buildAccessPolicies(
    const std::vector<std::string>& cluster_names, const std::vector<AccessDirective>& directives) {
  std::vector<epmd::AccessPolicy> out(cluster_names.size());
  for (const auto& d : directives) {
    if (d.key != "names-from" && d.key != "lookups-from") {
      return makeErr(d.where + ": unknown directive \"" + d.key + "\" (names-from, lookups-from)");
    }
    std::string cluster = "default";
    std::string rule = d.value;
    if (const auto eq = d.value.find('='); eq != std::string::npos) {
      cluster = d.value.substr(0, eq);
      rule = d.value.substr(eq + 1);
    }
    auto parsed = epmd::PeerRule::parse(rule);
    if (!parsed.ok()) {
      return makeErr(d.where + ": " + parsed.error());
    }
    bool matched = false;
    for (size_t i = 0; i < cluster_names.size(); ++i) {
      if (cluster == "*" || cluster == cluster_names[i]) {
        (d.key == "names-from" ? out[i].names : out[i].lookups) = parsed.value();
        matched = true;
      }
    }
    if (!matched) {
      return makeErr(d.where + ": no cluster named \"" + cluster + "\"");
    }
  }
  return out;
}

Result<std::vector<AccessDirective>, std::string> readAccessFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return makeErr("cannot read access file " + path);
  }
  std::vector<AccessDirective> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (const auto hash = line.find('#'); hash != std::string::npos) {
      line.erase(hash);
    }
    line.erase(0, line.find_first_not_of(" \t\r"));
    line.erase(line.find_last_not_of(" \t\r") + 1);
    if (line.empty()) {
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      return makeErr(path + ":" + std::to_string(n) + ": expected KEY=[CLUSTER=]RULE");
    }
    out.push_back({line.substr(0, eq), line.substr(eq + 1), path + ":" + std::to_string(n)});
  }
  return out;
}

Result<std::vector<epmd::AccessPolicy>, std::string> loadAccessPolicies(
    const std::vector<std::string>& cluster_names, std::vector<AccessDirective> directives,
    const std::string& access_file) {
  if (!access_file.empty()) {
    auto file = readAccessFile(access_file);
    if (!file.ok()) {
      return makeErr(file.error());
    }
    directives.insert(directives.end(), file.value().begin(), file.value().end());
  }
  return buildAccessPolicies(cluster_names, directives);
}

}  // namespace epmdx::app
