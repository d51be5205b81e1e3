#pragma once

// Writes the Prometheus text exposition format (0.0.4): a HELP and TYPE line per family,
// then its samples. Label values here come from enums and configuration only, never from
// peers, so label sets stay bounded and need no escaping beyond what callers pass.

#include <cstdint>
#include <string>
#include <string_view>

namespace epmdx {

class PrometheusWriter {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out_.append(name).append(" ").append(type).append("\n");
  }
  void sample(std::string_view name, uint64_t value, std::string_view labels = {}) {
    out_.append(name);
    if (!labels.empty()) {
      out_.append("{").append(labels).append("}");
    }
    out_.append(" ").append(std::to_string(value)).append("\n");
  }
  /// One label: key="value".
  static std::string label(std::string_view key, std::string_view value) {
    return std::string(key) + "=\"" + std::string(value) + "\"";
  }
  std::string& text() { return out_; }

 private:
  std::string out_;
};

}  // namespace epmdx
