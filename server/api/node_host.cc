#include "server/api/node_host.h"

#include <netdb.h>
#include <unistd.h>

#include <climits>
#include <cstring>

namespace epmdx::api {
namespace {

std::string_view upToDot(std::string_view host) {
  return host.substr(0, host.find('.'));
}

/// The address part of "127.0.0.1:50000" or "[::1]:50000" (brackets kept).
std::string_view addressOf(std::string_view endpoint) {
  if (!endpoint.empty() && endpoint.front() == '[') {
    const size_t end = endpoint.find(']');
    return end == std::string_view::npos ? endpoint : endpoint.substr(0, end + 1);
  }
  return endpoint.substr(0, endpoint.rfind(':'));
}

bool isLoopback(std::string_view address) {
  return address.starts_with("127.") || address == "[::1]" || address.starts_with("[::ffff:127.");
}

/// The peer is on this host: a loopback address, or the very address it reached the daemon
/// on (a node connecting to the host's own IP has that IP as its source).
bool fromThisHost(const registry::Origin& origin) {
  const std::string_view peer = addressOf(origin.peer_address);
  if (peer.empty()) {
    return false;
  }
  return isLoopback(peer) || peer == addressOf(origin.local_address);
}

}  // namespace

HostNames readHostNames() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) {
    return {};
  }
  const std::string host(buf);
  HostNames names{std::string(upToDot(host)), host};
  if (host.find('.') != std::string::npos) {
    return names;
  }
  addrinfo hints{};
  hints.ai_flags = AI_CANONNAME;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* info = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &info) == 0 && info != nullptr) {
    if (info->ai_canonname != nullptr && std::strchr(info->ai_canonname, '.') != nullptr) {
      names.long_name = info->ai_canonname;
    }
    freeaddrinfo(info);
  }
  return names;
}

const HostNames& daemonHostNames() {
  static const HostNames names = readHostNames();
  return names;
}

std::optional<CommandLineName> parseNodeName(std::string_view command_line) {
  std::optional<CommandLineName> found;
  bool expect_value = false;
  bool long_names = false;
  size_t pos = 0;
  while (pos <= command_line.size()) {
    size_t end = command_line.find_first_of(std::string_view("\0 ", 2), pos);
    if (end == std::string_view::npos) {
      end = command_line.size();
    }
    const std::string_view arg = command_line.substr(pos, end - pos);
    pos = end + 1;
    if (arg.empty()) {
      continue;  // Two separators in a row, or the trailing NUL.
    }
    if (expect_value) {
      expect_value = false;
      if (found) {
        return std::nullopt;  // Several names: which one the VM took is not ours to guess.
      }
      const size_t at = arg.find('@');
      found = CommandLineName{std::string(arg.substr(0, at)),
                              at == std::string_view::npos ? "" : std::string(arg.substr(at + 1)),
                              long_names};
      continue;
    }
    if (arg == "-extra") {
      break;  // The rest are the program's plain arguments, not the VM's flags.
    }
    if (arg == "-sname" || arg == "-name") {
      expect_value = true;
      long_names = arg == "-name";
    }
  }
  if (expect_value) {
    return std::nullopt;  // The flag was last, with no value: erl refuses to start.
  }
  return found;
}

std::string hostFromCommandLine(std::string_view command_line, std::string_view name,
                                const HostNames& names) {
  auto parsed = parseNodeName(command_line);
  if (!parsed || parsed->name != name) {
    return {};
  }
  if (!parsed->host.empty()) {
    return parsed->host;
  }
  return parsed->long_names ? names.long_name : names.short_name;
}

std::string nodeHost(const registry::Registration& r, const HostNames& names) {
  using S = registry::HolderFact::Status;
  if (r.holder && r.holder->status == S::Found && !r.holder->node_host.empty()) {
    return r.holder->node_host;
  }
  const bool local =
      fromThisHost(r.origin) ||
      (r.holder && (r.holder->status == S::Found || r.holder->status == S::NotVisible ||
                    r.holder->status == S::PermissionDenied));
  return local ? names.short_name : std::string();
}

}  // namespace epmdx::api
