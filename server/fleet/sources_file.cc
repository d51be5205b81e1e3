#include "server/fleet/sources_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>

#include "server/common/host_port.h"
#include "server/common/log.h"
#include "server/common/syscall.h"

namespace epmdx::fleet {
namespace {

/// The whole file, or why not.
Result<std::string, std::string> readWhole(const std::string& path) {
  const int fd = sys::retryEintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
  if (fd < 0) {
    return makeErr(path + ": cannot read: " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return makeErr(path + ": cannot read: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return makeErr(path + ": not a regular file");  // A FIFO would block the relay.
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = sys::readSome(fd, buf, sizeof buf);
    if (n < 0) {
      return makeErr(path + ": cannot read: " + std::strerror(errno));
    }
    if (n == 0) {
      return text;
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxSourcesFileBytes) {
      return makeErr(path + ": larger than " + std::to_string(kMaxSourcesFileBytes) + " bytes");
    }
  }
}

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\v\f";
  const size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) {
    return {};
  }
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

/// Letters, digits, '-', '_' and '.', no empty label, at most 253 characters (IPv4
/// literals are such names too).
bool isHostName(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' ||
      host.find("..") != std::string_view::npos) {
    return false;
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

/// `entry` as "HOST:PORT" ("[v6]:PORT"), or what is wrong with it.
Result<std::string, std::string> sourceAddress(std::string_view entry) {
  const auto hp = parseHostPort(entry);
  if (!hp) {
    return makeErr(std::string("a bad port"));
  }
  if (!hp->port) {
    return makeErr(std::string("no port"));
  }
  if (*hp->port == 0) {
    return makeErr(std::string("port 0"));
  }
  if (entry.front() == '[') {
    in6_addr v6{};
    if (inet_pton(AF_INET6, hp->host.c_str(), &v6) != 1) {
      return makeErr(std::string("not an IPv6 address in brackets"));
    }
  } else if (!isHostName(hp->host)) {
    return makeErr(std::string("not a host name or address"));
  }
  return joinHostPort(hp->host, *hp->port);
}

}  // namespace

Result<std::vector<std::string>, std::string> readSourcesFile(const std::string& path) {
  auto text = readWhole(path);
  if (!text) {
    return makeErr(text.error());
  }
  std::vector<std::string> out;
  std::set<std::string> seen;  // Lower case: host names are case-insensitive.
  std::string_view rest = text.value();
  for (size_t line = 1; !rest.empty(); ++line) {
    const size_t end = rest.find('\n');
    std::string_view entry = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    entry = trim(entry.substr(0, entry.find('#')));  // '#' is never part of HOST:PORT.
    if (entry.empty()) {
      continue;
    }
    auto address = sourceAddress(entry);
    if (!address) {
      const bool cut = entry.size() > 80;
      return makeErr(path + ":" + std::to_string(line) + ": \"" +
                     log::printable(entry.substr(0, 80)) + (cut ? "..." : "") +
                     "\" is not HOST:PORT (" + address.error() + ")");
    }
    std::string key = address.value();
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (seen.insert(key).second) {
      out.push_back(std::move(address.value()));
    }
  }
  return out;
}

}  // namespace epmdx::fleet
