#include "server/holder/holder_resolver.h"

#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "server/holder/sock_diag.h"

namespace epmdx::holder {
namespace {

using Clock = std::chrono::steady_clock;

std::chrono::microseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

// The kernel filter needs one port; a daemon serving several ports gets an unfiltered dump.
std::optional<uint16_t> commonPort(const std::vector<ConnectionKey>& connections) {
  if (connections.empty()) {
    return std::nullopt;
  }
  const uint16_t port = connections.front().local.port;
  for (const auto& c : connections) {
    if (c.local.port != port) {
      return std::nullopt;
    }
  }
  return port;
}

std::string describe(const ConnectionKey& client) {
  return client.local.toString() + " -> " + client.remote.toString();
}

}  // namespace

std::string_view toString(HolderStatus status) {
  switch (status) {
    case HolderStatus::Found:
      return "found";
    case HolderStatus::NotOnHost:
      return "not_on_host";
    case HolderStatus::NotVisible:
      return "not_visible";
    case HolderStatus::PermissionDenied:
      return "permission_denied";
    case HolderStatus::Error:
      return "error";
  }
  return "error";
}

std::vector<Holder> HolderResolver::resolve(const std::vector<ConnectionKey>& connections,
                                            ResolveStats* stats) const {
  ResolveStats local_stats;
  ResolveStats& st = stats != nullptr ? *stats : local_stats;
  st = ResolveStats{};
  std::vector<Holder> out(connections.size());
  if (connections.empty()) {
    return out;
  }

  auto start = Clock::now();
  auto dumped = dumpTcpSockets(commonPort(connections));
  st.sock_diag = since(start);
  if (!dumped) {
    for (auto& h : out) {
      h.status = HolderStatus::Error;
      h.reason = dumped.error();
    }
    return out;
  }
  st.sockets = dumped.value().size();
  // The node's end of the connection is the daemon's view turned around.
  std::unordered_map<ConnectionKey, const TcpSocket*, ConnectionKeyHash> by_key;
  for (const auto& s : dumped.value()) {
    by_key.emplace(s.key, &s);
  }
  std::vector<const TcpSocket*> client(connections.size(), nullptr);
  std::unordered_set<uint64_t> inodes;
  for (size_t i = 0; i < connections.size(); ++i) {
    const ConnectionKey theirs{connections[i].remote, connections[i].local};
    if (auto it = by_key.find(theirs); it != by_key.end()) {
      client[i] = it->second;
      inodes.insert(it->second->inode);
    }
  }

  start = Clock::now();
  SocketRefs hints;
  if (options_.remember_holders) {
    std::lock_guard lock(mu_);
    hints = known_;
  }
  const FdScan scan =
      inodes.empty() ? FdScan{} : scanSocketHolders(inodes, options_.proc_root, &hints);
  st.proc_scan = since(start);
  st.processes = scan.processes;
  st.descriptors = scan.descriptors;
  st.confirmed = scan.confirmed;
  st.full_scan = scan.full_scan;
  if (options_.remember_holders) {
    // Keep what is still worth knowing: this batch's holders, and earlier ones whose socket
    // the dump still lists (another batch may ask for them: a single lookup between two
    // periodic refreshes must not make the next refresh scan everything). Sockets that
    // closed drop out, so the memory follows the live connections.
    std::unordered_set<uint64_t> live;
    live.reserve(dumped.value().size());
    for (const auto& s : dumped.value()) {
      live.insert(s.inode);
    }
    std::lock_guard lock(mu_);
    for (auto it = known_.begin(); it != known_.end();) {
      it = live.count(it->first) != 0 ? std::next(it) : known_.erase(it);
    }
    for (const auto& [inode, refs] : scan.holders) {
      known_[inode] = refs;
    }
  }

  start = Clock::now();
  // The state is read every time (it is what changes: stopped, zombie); uid, user, NSpid and
  // command line are fixed for a process's life, so they are read once per pid and start
  // time, and kept while the process holds a remembered socket.
  std::unordered_map<pid_t, std::optional<ProcessInfo>> info_cache;
  std::unordered_map<uid_t, std::string> user_cache;
  auto processInfo = [&](pid_t pid) -> const std::optional<ProcessInfo>& {
    auto [it, fresh] = info_cache.try_emplace(pid);
    if (!fresh) {
      return it->second;
    }
    ProcessInfo info;
    if (!readProcessStat(pid, info, options_.proc_root)) {
      return it->second;
    }
    {
      std::lock_guard lock(mu_);
      if (auto known = details_.find(pid);
          known != details_.end() && known->second.start_time_ticks == info.start_time_ticks) {
        info.uid = known->second.uid;
        info.user = known->second.user;
        info.nspids = known->second.nspids;
        info.command_line = known->second.command_line;
        it->second = std::move(info);
        return it->second;
      }
    }
    readProcessDetails(pid, info, options_.proc_root);
    auto [u, new_uid] = user_cache.try_emplace(info.uid);
    if (new_uid) {
      u->second = userName(info.uid);
    }
    info.user = u->second;
    if (options_.remember_holders) {
      std::lock_guard lock(mu_);
      details_[pid] = info;
    }
    it->second = std::move(info);
    return it->second;
  };

  for (size_t i = 0; i < connections.size(); ++i) {
    Holder& h = out[i];
    const ConnectionKey theirs{connections[i].remote, connections[i].local};
    if (client[i] == nullptr) {
      h.status = HolderStatus::NotOnHost;
      h.reason = "no TCP socket " + describe(theirs) +
                 " in this network namespace: the peer is on another host or in another "
                 "network namespace, or the connection has closed";
      continue;
    }
    h.socket_inode = client[i]->inode;
    h.socket_uid = client[i]->uid;
    if (auto it = scan.holders.find(h.socket_inode); it != scan.holders.end()) {
      pid_t previous = 0;
      for (const SocketRef& ref : it->second) {  // By pid: dup()ed descriptors are adjacent.
        if (ref.pid == previous) {
          continue;
        }
        previous = ref.pid;
        if (const auto& info = processInfo(ref.pid)) {
          h.processes.push_back(*info);
        }
      }
    }
    if (!h.processes.empty()) {
      h.status = HolderStatus::Found;
      continue;
    }
    size_t denied_same_user = 0;
    for (const auto& [pid, uid] : scan.unreadable) {
      denied_same_user += uid == h.socket_uid ? 1 : 0;
    }
    const std::string socket_text = "socket " + describe(theirs) + " (inode " +
                                    std::to_string(h.socket_inode) + ", uid " +
                                    std::to_string(h.socket_uid) + ")";
    if (denied_same_user > 0) {
      h.status = HolderStatus::PermissionDenied;
      h.reason = socket_text + ": permission denied reading /proc/PID/fd of " +
                 std::to_string(denied_same_user) + " process(es) of uid " +
                 std::to_string(h.socket_uid) + " (needs root or CAP_SYS_PTRACE)";
    } else {
      h.status = HolderStatus::NotVisible;
      h.reason = socket_text +
                 ": no process visible here holds it; the holder runs in another PID "
                 "namespace (e.g. a container without a shared process namespace), or /proc "
                 "is mounted with hidepid";
    }
  }
  if (options_.remember_holders) {
    // Details of processes that no longer hold a remembered socket go.
    std::lock_guard lock(mu_);
    std::unordered_set<pid_t> holding;
    for (const auto& [inode, refs] : known_) {
      for (const auto& ref : refs) {
        holding.insert(ref.pid);
      }
    }
    for (auto it = details_.begin(); it != details_.end();) {
      it = holding.count(it->first) != 0 ? std::next(it) : details_.erase(it);
    }
  }
  st.process_info = since(start);
  return out;
}

}  // namespace epmdx::holder
