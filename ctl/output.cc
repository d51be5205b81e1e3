#include "ctl/output.h"

#include <algorithm>
#include <cctype>
#include <tuple>

namespace epmdx::ctl {

std::optional<Format> parseFormat(const std::string& text) {
  if (text == "table") {
    return Format::Table;
  }
  if (text == "wide") {
    return Format::Wide;
  }
  if (text == "json") {
    return Format::Json;
  }
  if (text == "yaml") {
    return Format::Yaml;
  }
  if (text == "names") {
    return Format::Names;
  }
  return std::nullopt;
}

std::string healthName(const v1::NodeHealth& health) {
  switch (health.status()) {
    case v1::ALIVE:
      return "alive";
    case v1::UNRESPONSIVE:
      return "unresponsive(" + std::to_string(health.consecutive_failures()) + ")";
    default:
      return "unknown";
  }
}

std::string holderName(const v1::Holder& holder) {
  if (holder.status() == v1::FOUND && holder.processes_size() > 0) {
    const auto& p = holder.processes(0);
    return std::to_string(p.pid()) + "/" + p.command() + "(" + p.state() + ")";
  }
  std::string name = v1::HolderStatus_Name(holder.status());
  for (auto& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name == "holder_unknown" ? "unknown" : name;
}

std::string releaseHelperTag(const v1::Node& node) {
  if (!node.has_release_helper()) {
    return {};
  }
  return "release_helper=" + node.release_helper().command() + ":" + node.release_helper().target();
}

std::vector<std::string> nodeHeader(bool wide, NodeColumns columns) {
  std::vector<std::string> header{"NAME", "PORT", "TYPE", "AGE"};
  if (wide) {
    header.insert(header.end(), {"CLUSTER", "VERSIONS", "CREATION", "REGISTERED-AT", "ID", "PEER",
                                 "HEALTH", "HOLDER"});
  } else if (columns.cluster) {
    header.insert(header.begin() + 1, "CLUSTER");
  }
  if (columns.source) {
    // Short: NAME SOURCE [CLUSTER] ...; wide: ... AGE SOURCE CLUSTER ...
    header.insert(wide ? header.begin() + 4 : header.begin() + 1, "SOURCE");
  }
  if (columns.stale) {
    header.push_back("STALE");
  }
  return header;
}

std::string nodeName(const v1::Node& node) {
  return node.host().empty() ? node.name() : node.name() + "@" + node.host();
}

std::vector<std::string> nodeRow(const v1::Node& node, bool wide, std::time_t now, bool with_host,
                                 NodeColumns columns) {
  std::vector<std::string> row{with_host ? nodeName(node) : node.name(),
                               std::to_string(node.port()), typeName(node),
                               age(node.registered_at(), now)};
  if (wide) {
    row.insert(row.end(), {node.cluster(),
                           std::to_string(node.lowest_version()) + "-" +
                               std::to_string(node.highest_version()),
                           std::to_string(node.creation()), utcTime(node.registered_at()),
                           std::to_string(node.registration_id()), node.peer_address(),
                           healthName(node.health()), holderName(node.holder())});
  } else if (columns.cluster) {
    row.insert(row.begin() + 1, node.cluster());
  }
  if (columns.source) {
    // "-": a node without a source in a relay's table (never expected, but never an empty
    // cell that would shift the columns a script splits on).
    row.insert(wide ? row.begin() + 4 : row.begin() + 1,
               node.source().empty() ? "-" : node.source());
  }
  if (columns.stale) {
    row.push_back(node.stale() ? "yes" : "no");
  }
  return row;
}

bool fromRelay(const google::protobuf::RepeatedPtrField<v1::Node>& nodes, bool source_chosen) {
  return source_chosen || std::any_of(nodes.begin(), nodes.end(),
                                      [](const v1::Node& n) { return !n.source().empty(); });
}

std::string age(const google::protobuf::Timestamp& at, std::time_t now) {
  const long secs = std::max(0L, static_cast<long>(now - at.seconds()));
  if (secs < 120) {
    return std::to_string(secs) + "s";
  }
  if (secs < 7200) {
    return std::to_string(secs / 60) + "m";
  }
  if (secs < 172800) {
    return std::to_string(secs / 3600) + "h";
  }
  return std::to_string(secs / 86400) + "d";
}

std::string utcTime(const google::protobuf::Timestamp& at) {
  const std::time_t t = static_cast<std::time_t>(at.seconds());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string typeName(const v1::Node& node) {
  switch (node.node_type()) {
    case v1::NODE_TYPE_NORMAL:
      return "normal";
    case v1::NODE_TYPE_HIDDEN:
      return "hidden";
    default:
      return "type " + std::to_string(node.node_type_raw());
  }
}

std::vector<const v1::Node*> byName(const google::protobuf::RepeatedPtrField<v1::Node>& nodes) {
  std::vector<const v1::Node*> sorted;
  for (const auto& n : nodes) {
    sorted.push_back(&n);
  }
  std::sort(sorted.begin(), sorted.end(), [](const v1::Node* a, const v1::Node* b) {
    // The same name may be in two clusters, or (a relay) on two sources: then by those.
    return std::tie(a->name(), a->source(), a->cluster()) <
           std::tie(b->name(), b->source(), b->cluster());
  });
  return sorted;
}

size_t displayWidth(const std::string& text) {
  // Continuation bytes (10xxxxxx) do not start a code point.
  return static_cast<size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

std::string renderRows(const std::vector<std::vector<std::string>>& rows,
                       std::vector<size_t>* widths) {
  std::vector<size_t> local;
  std::vector<size_t>& w = widths != nullptr ? *widths : local;
  for (const auto& row : rows) {
    if (w.size() < row.size()) {
      w.resize(row.size(), 0);
    }
    for (size_t i = 0; i < row.size(); ++i) {
      w[i] = std::max(w[i], displayWidth(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) {
        out += std::string(w[i] - displayWidth(row[i]) + 2, ' ');
      }
    }
    out += '\n';
  }
  return out;
}

}  // namespace epmdx::ctl
