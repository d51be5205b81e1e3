#include "server/holder/proc_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "server/common/syscall.h"
#include "server/holder/cookie_redact.h"

namespace epmdx::holder {
namespace {

bool parsePid(const char* name, pid_t& pid) {
  const char* end = name + std::strlen(name);
  const auto [ptr, ec] = std::from_chars(name, end, pid);
  return ec == std::errc() && ptr == end && pid > 0;
}

bool parseFd(const char* name, int& fd) {
  const char* end = name + std::strlen(name);
  const auto [ptr, ec] = std::from_chars(name, end, fd);
  return ec == std::errc() && ptr == end && fd >= 0;
}

// "socket:[12345]" -> 12345.
bool socketInode(const char* link, size_t n, uint64_t& inode) {
  constexpr std::string_view kPrefix = "socket:[";
  if (n < kPrefix.size() + 2 || std::memcmp(link, kPrefix.data(), kPrefix.size()) != 0 ||
      link[n - 1] != ']') {
    return false;
  }
  const auto [ptr, ec] = std::from_chars(link + kPrefix.size(), link + n - 1, inode);
  return ec == std::errc() && ptr == link + n - 1;
}

// procfs files are small and generated on read: plain read() calls, no stream machinery.
std::string readSmallFile(const std::string& path) {
  std::string text;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return text;
  }
  char buf[4096];
  for (ssize_t n; (n = sys::readSome(fd, buf, sizeof(buf))) > 0;) {
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return text;
}

// The rest of the line that starts with `key` ("Uid:\t0\t0\t0\t0" -> "\t0\t0\t0\t0").
bool findLine(std::string_view text, std::string_view key, std::string_view& rest) {
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    if (text.compare(at, key.size(), key) == 0) {
      rest = text.substr(at + key.size(), end - at - key.size());
      return true;
    }
    at = end + 1;
  }
  return false;
}

// Up to `max` whitespace-separated numbers from the start of `text`; stops at the first
// field that is not one.
template <class T>
std::vector<T> parseNumbers(std::string_view text, size_t max) {
  std::vector<T> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (out.size() < max) {
    while (p < end && (*p == ' ' || *p == '\t')) {
      ++p;
    }
    T value{};
    const auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc() || next == p) {
      break;
    }
    out.push_back(value);
    p = next;
  }
  return out;
}

}  // namespace

std::string userName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

namespace {

// The socket inode a descriptor of the process whose fd directory is `dfd` links to, if any.
bool linkedInode(int dfd, const char* fd_name, uint64_t& inode) {
  char link[64];
  const ssize_t n = readlinkat(dfd, fd_name, link, sizeof(link));
  return n > 0 && socketInode(link, static_cast<size_t>(n), inode);
}

// Checks the remembered holders of the `wanted` inodes, one readlink each, grouped by
// process (one open of /proc/PID/fd each); the confirmed inodes leave `wanted`.
void confirmHints(const SocketRefs& hints, const std::string& proc_root,
                  std::unordered_set<uint64_t>& wanted, FdScan& scan) {
  std::unordered_map<pid_t, std::vector<std::pair<uint64_t, int>>> by_pid;
  for (const auto& [inode, refs] : hints) {
    if (wanted.count(inode) != 0) {
      for (const auto& ref : refs) {
        by_pid[ref.pid].emplace_back(inode, ref.fd);
      }
    }
  }
  for (const auto& [pid, fds] : by_pid) {
    const std::string fd_dir = proc_root + "/" + std::to_string(pid) + "/fd";
    const int dfd = open(fd_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      continue;  // Gone: its sockets go to the full scan.
    }
    for (const auto& [inode, fd] : fds) {
      char name[16];
      const auto [end, ec] = std::to_chars(name, name + sizeof(name) - 1, fd);
      *end = '\0';
      uint64_t now = 0;
      if (linkedInode(dfd, name, now) && now == inode) {
        scan.holders[inode].push_back(SocketRef{pid, fd});
      }
    }
    close(dfd);
  }
  for (auto& [inode, refs] : scan.holders) {
    wanted.erase(inode);
    ++scan.confirmed;
  }
}

// Reads every descriptor of one process (`name` is its /proc entry) for the `wanted` inodes.
void scanProcess(pid_t pid, const char* name, const std::string& proc_root,
                 const std::unordered_set<uint64_t>& wanted, FdScan& scan) {
  ++scan.processes;
  const std::string fd_dir = proc_root + "/" + name + "/fd";
  const int dfd = open(fd_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == EACCES || errno == EPERM) {
      const int64_t uid = readProcessUid(pid, proc_root);
      scan.unreadable.emplace_back(pid, uid < 0 ? static_cast<uid_t>(-1) : uid);
    }
    return;  // ENOENT: the process exited meanwhile.
  }
  DIR* fds = fdopendir(dfd);
  if (fds == nullptr) {
    close(dfd);
    return;
  }
  while (const dirent* fe = readdir(fds)) {
    int fd = -1;
    if (!parseFd(fe->d_name, fd)) {
      continue;
    }
    ++scan.descriptors;
    uint64_t inode = 0;
    if (linkedInode(dfd, fe->d_name, inode) && wanted.count(inode) != 0) {
      scan.holders[inode].push_back(SocketRef{pid, fd});
    }
  }
  closedir(fds);  // Closes dfd too.
}

// Every process under `proc_root`; then each inode's holders by pid, then descriptor.
void scanEveryProcess(const std::string& proc_root, const std::unordered_set<uint64_t>& wanted,
                      FdScan& scan) {
  scan.full_scan = true;
  DIR* proc = opendir(proc_root.c_str());
  if (proc == nullptr) {
    return;
  }
  while (const dirent* pe = readdir(proc)) {
    pid_t pid = 0;
    if (parsePid(pe->d_name, pid)) {
      scanProcess(pid, pe->d_name, proc_root, wanted, scan);
    }
  }
  closedir(proc);
  for (auto& [inode, refs] : scan.holders) {
    std::sort(refs.begin(), refs.end(), [](const SocketRef& a, const SocketRef& b) {
      return a.pid != b.pid ? a.pid < b.pid : a.fd < b.fd;
    });
  }
}

}  // namespace

FdScan scanSocketHolders(const std::unordered_set<uint64_t>& inodes, const std::string& proc_root,
                         const SocketRefs* hints) {
  FdScan scan;
  std::unordered_set<uint64_t> wanted = inodes;
  if (hints != nullptr) {
    confirmHints(*hints, proc_root, wanted, scan);
  }
  if (!wanted.empty()) {
    scanEveryProcess(proc_root, wanted, scan);
  }
  return scan;
}

int64_t readProcessUid(pid_t pid, const std::string& proc_root) {
  const std::string status = readSmallFile(proc_root + "/" + std::to_string(pid) + "/status");
  std::string_view uid_line;
  if (!findLine(status, "Uid:", uid_line)) {
    return -1;
  }
  const auto numbers = parseNumbers<int64_t>(uid_line, 1);
  return numbers.empty() ? -1 : numbers[0];
}

bool readProcessStat(pid_t pid, ProcessInfo& out, const std::string& proc_root) {
  const std::string stat = readSmallFile(proc_root + "/" + std::to_string(pid) + "/stat");
  // "PID (COMM) S ...": comm may hold spaces and parentheses, so split at the last ')'.
  const size_t open = stat.find('(');
  const size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) {
    return false;
  }
  out = ProcessInfo{};
  out.pid = pid;
  out.command = stat.substr(open + 1, close - open - 1);
  out.state = stat[close + 2];
  // After the state come fields 4 to 21 (tpgid, priority and nice may be negative), then
  // starttime (field 22).
  const auto fields = parseNumbers<int64_t>(std::string_view(stat).substr(close + 3), 19);
  if (fields.size() == 19) {
    out.start_time_ticks = static_cast<uint64_t>(fields[18]);
  }
  return true;
}

void readProcessDetails(pid_t pid, ProcessInfo& out, const std::string& proc_root) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  const std::string status = readSmallFile(dir + "/status");
  std::string_view line;
  if (findLine(status, "Uid:", line)) {
    const auto uids = parseNumbers<uid_t>(line, 1);
    out.uid = uids.empty() ? 0 : uids[0];
  }
  if (findLine(status, "NSpid:", line)) {
    out.nspids = parseNumbers<pid_t>(line, 64);
  }

  // Redacted here, as it is read: nothing after this can keep or show the cookie.
  std::string cmdline = redactCookies(readSmallFile(dir + "/cmdline"));
  while (!cmdline.empty() && cmdline.back() == '\0') {
    cmdline.pop_back();
  }
  std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
  out.command_line = std::move(cmdline);
}

bool readProcessInfo(pid_t pid, ProcessInfo& out, const std::string& proc_root) {
  if (!readProcessStat(pid, out, proc_root)) {
    return false;
  }
  readProcessDetails(pid, out, proc_root);
  return true;
}

std::string ProcessInfo::stateName() const {
  switch (state) {
    case 'R':
      return "running";
    case 'S':
      return "sleeping";
    case 'D':
      return "disk sleep";
    case 'T':
      return "stopped";
    case 't':
      return "tracing stop";
    case 'Z':
      return "zombie";
    case 'X':
      return "dead";
    case 'I':
      return "idle";
    default:
      return "unknown";
  }
}

}  // namespace epmdx::holder
