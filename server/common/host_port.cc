#include "server/common/host_port.h"

#include <algorithm>
#include <cctype>

namespace epmdx {
namespace {

/// 1 to 5 digits, at most 65535.
std::optional<uint16_t> parsePort(std::string_view digits) {
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  unsigned long n = 0;
  for (const char c : digits) {
    n = n * 10 + static_cast<unsigned long>(c - '0');
  }
  if (n > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(n);
}

}  // namespace

std::optional<HostPort> parseHostPort(std::string_view text) {
  HostPort out;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (rest.empty()) {
      return out;
    }
    if (rest.front() != ':') {
      return std::nullopt;
    }
    out.port = parsePort(rest.substr(1));
    return out.port ? std::optional<HostPort>(out) : std::nullopt;
  }
  const auto colons = std::count(text.begin(), text.end(), ':');
  if (colons != 1) {
    out.host = std::string(text);  // No colon, or a bare IPv6 literal.
    return out;
  }
  const auto colon = text.find(':');
  out.host = std::string(text.substr(0, colon));
  out.port = parsePort(text.substr(colon + 1));
  return out.port ? std::optional<HostPort>(out) : std::nullopt;
}

std::string joinHostPort(std::string_view host, uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string out;
  out.reserve(host.size() + 8);
  if (v6) {
    out += '[';
  }
  out += host;
  if (v6) {
    out += ']';
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

std::vector<std::string> splitHostList(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    std::string item(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    std::transform(item.begin(), item.end(), item.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!item.empty()) {
      out.push_back(std::move(item));
    }
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  return out;
}

}  // namespace epmdx
