#include "server/holder/holder_resolver.h"

#include <optional>
#include <unordered_map>
#include <unordered_set>

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

std::string describeKey(const ConnectionKey& client) {
  return client.local.toString() + " -> " + client.remote.toString();
}

// Finds each connection's node end (the daemon's view turned around) in the dump: `client`
// gets one pointer into `dumped` per connection (null: not there). @return their inodes.
std::unordered_set<uint64_t> clientSockets(const std::vector<ConnectionKey>& connections,
                                           const std::vector<TcpSocket>& dumped,
                                           std::vector<const TcpSocket*>& client) {
  std::unordered_map<ConnectionKey, const TcpSocket*, ConnectionKeyHash> by_key;
  for (const auto& s : dumped) {
    by_key.emplace(s.key, &s);
  }
  client.assign(connections.size(), nullptr);
  std::unordered_set<uint64_t> inodes;
  for (size_t i = 0; i < connections.size(); ++i) {
    const ConnectionKey theirs{connections[i].remote, connections[i].local};
    if (auto it = by_key.find(theirs); it != by_key.end()) {
      client[i] = it->second;
      inodes.insert(it->second->inode);
    }
  }
  return inodes;
}

// Why a socket that is here has no holder to show: unreadable fd directories of its
// owner's uid, or none visible at all.
void explainUnseen(Holder& h, const ConnectionKey& theirs, const FdScan& scan) {
  size_t denied_same_user = 0;
  for (const auto& [pid, uid] : scan.unreadable) {
    denied_same_user += uid == h.socket_uid ? 1 : 0;
  }
  const std::string socket_text = "socket " + describeKey(theirs) + " (inode " +
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

struct HolderResolver::BatchCache {
  std::unordered_map<pid_t, std::optional<ProcessInfo>> info;
  std::unordered_map<uid_t, std::string> users;
};

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
  std::vector<const TcpSocket*> client;
  const auto inodes = clientSockets(connections, dumped.value(), client);

  start = Clock::now();
  const SocketRefs known = hints();
  const FdScan scan =
      inodes.empty() ? FdScan{} : scanSocketHolders(inodes, options_.proc_root, &known);
  st.proc_scan = since(start);
  st.processes = scan.processes;
  st.descriptors = scan.descriptors;
  st.confirmed = scan.confirmed;
  st.full_scan = scan.full_scan;
  if (options_.remember_holders) {
    remember(dumped.value(), scan);
  }

  start = Clock::now();
  BatchCache cache;
  for (size_t i = 0; i < connections.size(); ++i) {
    describe(out[i], ConnectionKey{connections[i].remote, connections[i].local}, client[i], scan,
             cache);
  }
  if (options_.remember_holders) {
    forgetGoneProcesses();
  }
  st.process_info = since(start);
  return out;
}

SocketRefs HolderResolver::hints() const {
  if (!options_.remember_holders) {
    return {};
  }
  std::lock_guard lock(mu_);
  return known_;
}

void HolderResolver::remember(const std::vector<TcpSocket>& live, const FdScan& scan) const {
  // Keep what is still worth knowing: this batch's holders, and earlier ones whose socket
  // the dump still lists (another batch may ask for them: a single lookup between two
  // periodic refreshes must not make the next refresh scan everything). Sockets that
  // closed drop out, so the memory follows the live connections.
  std::unordered_set<uint64_t> inodes;
  inodes.reserve(live.size());
  for (const auto& s : live) {
    inodes.insert(s.inode);
  }
  std::lock_guard lock(mu_);
  for (auto it = known_.begin(); it != known_.end();) {
    it = inodes.count(it->first) != 0 ? std::next(it) : known_.erase(it);
  }
  for (const auto& [inode, refs] : scan.holders) {
    known_[inode] = refs;
  }
}

void HolderResolver::describe(Holder& h, const ConnectionKey& theirs, const TcpSocket* client,
                              const FdScan& scan, BatchCache& cache) const {
  if (client == nullptr) {
    h.status = HolderStatus::NotOnHost;
    h.reason = "no TCP socket " + describeKey(theirs) +
               " in this network namespace: the peer is on another host or in another "
               "network namespace, or the connection has closed";
    return;
  }
  h.socket_inode = client->inode;
  h.socket_uid = client->uid;
  if (auto it = scan.holders.find(h.socket_inode); it != scan.holders.end()) {
    pid_t previous = 0;
    for (const SocketRef& ref : it->second) {  // By pid: dup()ed descriptors are adjacent.
      if (ref.pid == previous) {
        continue;
      }
      previous = ref.pid;
      if (const auto& info = processInfo(ref.pid, cache)) {
        h.processes.push_back(*info);
      }
    }
  }
  if (!h.processes.empty()) {
    h.status = HolderStatus::Found;
    return;
  }
  explainUnseen(h, theirs, scan);
}

const std::optional<ProcessInfo>& HolderResolver::processInfo(pid_t pid, BatchCache& cache) const {
  // The state is read every time (it is what changes: stopped, zombie); uid, user, NSpid and
  // command line are fixed for a process's life, so they are read once per pid and start
  // time, and kept while the process holds a remembered socket.
  auto [it, fresh] = cache.info.try_emplace(pid);
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
  auto [u, new_uid] = cache.users.try_emplace(info.uid);
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
}

void HolderResolver::forgetGoneProcesses() const {
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

}  // namespace epmdx::holder
