#include "server/admin/port_holder.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace epmdx::admin {
namespace {

constexpr const char* kListenState = "0A";

/// The inode of a socket listening on `port` in a /proc/net/tcp-format file, or "".
std::string listeningInode(const char* table, uint16_t port) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // Header.
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retrans, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retrans >> uid >> timeout >>
        inode;
    const auto colon = local.rfind(':');
    if (colon == std::string::npos || state != kListenState) {
      continue;
    }
    if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) {
      return inode;
    }
  }
  return {};
}

}  // namespace

std::string describePortHolder(uint16_t port) {
  std::string inode = listeningInode("/proc/net/tcp", port);
  if (inode.empty()) {
    inode = listeningInode("/proc/net/tcp6", port);
  }
  if (inode.empty() || inode == "0") {
    return {};
  }
  const std::string want = "socket:[" + inode + "]";
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return {};
  }
  std::string found;
  while (dirent* d = readdir(proc)) {
    const std::string pid = d->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos || !found.empty()) {
      continue;
    }
    const std::string fd_dir = "/proc/" + pid + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (fds == nullptr) {
      continue;  // Not ours to read.
    }
    while (dirent* f = readdir(fds)) {
      char target[64];
      const std::string link = fd_dir + "/" + f->d_name;
      const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
      if (n > 0 && std::string(target, static_cast<size_t>(n)) == want) {
        std::ifstream comm("/proc/" + pid + "/comm");
        std::string name;
        std::getline(comm, name);
        found = "pid " + pid + " (" + name + ")";
        break;
      }
    }
    closedir(fds);
  }
  closedir(proc);
  return found;
}

}  // namespace epmdx::admin
