#include "server/holder/sock_diag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "server/common/syscall.h"

namespace epmdx::holder {
namespace {

// The states a connection held by a live process can be in. LISTEN has no peer; TIME_WAIT
// and SYN_RECV entries are not sockets of any process (inode 0).
constexpr uint32_t kConnectedStates =
    (1U << TCP_ESTABLISHED) | (1U << TCP_SYN_SENT) | (1U << TCP_FIN_WAIT1) | (1U << TCP_FIN_WAIT2) |
    (1U << TCP_CLOSE_WAIT) | (1U << TCP_LAST_ACK) | (1U << TCP_CLOSING);

// NLMSG_OK and NLMSG_NEXT with their types spelled out: the macros compare the header's
// unsigned length with a signed count. `left` is what the buffer still holds from `h` on.
bool messageFits(const nlmsghdr* h, size_t left) {
  return left >= sizeof(nlmsghdr) && h->nlmsg_len >= sizeof(nlmsghdr) && h->nlmsg_len <= left;
}

const nlmsghdr* nextMessage(const nlmsghdr* h, size_t& left) {
  const size_t step = NLMSG_ALIGN(h->nlmsg_len);
  left = step < left ? left - step : 0;
  return reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(h) + step);
}

std::string sysError(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

class NetlinkSocket {
 public:
  NetlinkSocket() : fd_(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) {}
  ~NetlinkSocket() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Kernel-side filter "remote port == port": two port comparisons in inet_diag bytecode.
// Each comparison is two 4-byte ops (the second carries the port); `no` jumps past the end
// of the program, which rejects the socket; falling off the end accepts it.
std::vector<inet_diag_bc_op> remotePortFilter(uint16_t port) {
  std::vector<inet_diag_bc_op> ops(4);
  ops[0] = {INET_DIAG_BC_D_GE, 8, 16 + 4};
  ops[1] = {0, 0, port};
  ops[2] = {INET_DIAG_BC_D_LE, 8, 8 + 4};
  ops[3] = {0, 0, port};
  return ops;
}

Result<bool, std::string> sendDumpRequest(int fd, uint8_t family,
                                          const std::vector<inet_diag_bc_op>& filter) {
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
    rtattr attr;
    inet_diag_bc_op ops[4];
  } msg{};
  static_assert(sizeof(msg.ops) == 16);
  const size_t filter_bytes = filter.size() * sizeof(inet_diag_bc_op);
  msg.nlh.nlmsg_len = static_cast<uint32_t>(NLMSG_LENGTH(sizeof(inet_diag_req_v2)) +
                                            (filter.empty() ? 0 : RTA_LENGTH(filter_bytes)));
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.nlh.nlmsg_seq = family;
  msg.req.sdiag_family = family;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = kConnectedStates;
  if (!filter.empty()) {
    msg.attr.rta_type = INET_DIAG_REQ_BYTECODE;
    msg.attr.rta_len = static_cast<unsigned short>(RTA_LENGTH(filter_bytes));
    std::memcpy(msg.ops, filter.data(), filter_bytes);
  }
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  iovec iov{&msg, msg.nlh.nlmsg_len};
  msghdr mh{};
  mh.msg_name = &kernel;
  mh.msg_namelen = sizeof(kernel);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (sys::retryEintr([&] { return sendmsg(fd, &mh, 0); }) < 0) {
    return makeErr(sysError("sock_diag sendmsg", errno));
  }
  return true;
}

TcpSocket toTcpSocket(const inet_diag_msg& m) {
  TcpSocket s;
  const uint16_t sport = ntohs(m.id.idiag_sport);
  const uint16_t dport = ntohs(m.id.idiag_dport);
  if (m.idiag_family == AF_INET) {
    s.key.local = Endpoint::fromIpv4(m.id.idiag_src[0], sport);
    s.key.remote = Endpoint::fromIpv4(m.id.idiag_dst[0], dport);
  } else {
    uint8_t src[16];
    uint8_t dst[16];
    std::memcpy(src, m.id.idiag_src, 16);
    std::memcpy(dst, m.id.idiag_dst, 16);
    s.key.local = Endpoint::fromIpv6(src, sport);
    s.key.remote = Endpoint::fromIpv6(dst, dport);
  }
  s.inode = m.idiag_inode;
  s.uid = m.idiag_uid;
  s.state = m.idiag_state;
  return s;
}

// Reads one dump's answer to the end (NLMSG_DONE).
// `family_missing` is set when the kernel has no inet_diag handler for the family (IPv6
// disabled at boot, or the tcp_diag module's IPv6 half absent).
Result<bool, std::string> readDump(int fd, std::vector<TcpSocket>& out, bool& family_missing) {
  alignas(nlmsghdr) static thread_local char buf[64 * 1024];
  while (true) {
    const ssize_t n = sys::recvSome(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      return makeErr(sysError("sock_diag recv", errno));
    }
    size_t left = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<const nlmsghdr*>(buf); messageFits(h, left);
         h = nextMessage(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        return true;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        family_missing = e->error == -ENOENT || e->error == -EAFNOSUPPORT;
        return makeErr(sysError("sock_diag dump", -e->error));
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) {
        continue;
      }
      const auto* m = static_cast<const inet_diag_msg*>(NLMSG_DATA(h));
      if (m->idiag_inode != 0) {
        out.push_back(toTcpSocket(*m));
      }
    }
  }
}

}  // namespace

Result<std::vector<TcpSocket>, std::string> dumpTcpSockets(std::optional<uint16_t> remote_port) {
  NetlinkSocket nl;
  if (nl.fd() < 0) {
    return makeErr(sysError("socket(NETLINK_SOCK_DIAG)", errno));
  }
  const auto filter = remote_port ? remotePortFilter(*remote_port) : std::vector<inet_diag_bc_op>{};
  std::vector<TcpSocket> sockets;
  for (const uint8_t family : {uint8_t{AF_INET}, uint8_t{AF_INET6}}) {
    if (auto sent = sendDumpRequest(nl.fd(), family, filter); !sent) {
      return makeErr(sent.error());
    }
    bool family_missing = false;
    if (auto read = readDump(nl.fd(), sockets, family_missing); !read) {
      if (family == AF_INET6 && family_missing) {
        break;  // No IPv6 on this host: no IPv6 connections either.
      }
      return makeErr(read.error());
    }
  }
  return sockets;
}

}  // namespace epmdx::holder
