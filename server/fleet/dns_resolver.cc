#include "server/fleet/dns_resolver.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <compare>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "server/common/host_port.h"
#include "server/common/log.h"

namespace epmdx::fleet {
namespace {

using Clock = std::chrono::steady_clock;

// ---- Names: what --sources-dns accepts.

bool isLabelChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

/// Why `name` is not a DNS name to ask for ("" when it is one): labels of 1 to 63 letters,
/// digits, '-' or '_' ('_' for SRV's "_grpc._tcp"), at most 253 characters, and an
/// optional trailing dot.
std::string nameProblem(std::string_view name) {
  const std::string_view body = name.ends_with('.') ? name.substr(0, name.size() - 1) : name;
  if (body.empty()) {
    return "the name is empty";
  }
  if (body.size() > 253) {
    return "the name is longer than 253 characters";
  }
  for (size_t start = 0;;) {
    const size_t dot = body.find('.', start);
    const std::string_view label =
        body.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) {
      return "the name has an empty label";
    }
    if (label.size() > 63) {
      return "the name has a label longer than 63 characters";
    }
    if (!std::all_of(label.begin(), label.end(), isLabelChar)) {
      return "a name has only letters, digits, '-', '_' and '.'";
    }
    if (dot == std::string_view::npos) {
      return {};
    }
    start = dot + 1;
  }
}

/// "_service._proto.NAME": two underscore labels, then at least one more.
bool isServiceName(std::string_view name) {
  const size_t first = name.find('.');
  if (first == std::string_view::npos || first < 2 || name[0] != '_') {
    return false;
  }
  const size_t second = name.find('.', first + 1);
  return second != std::string_view::npos && second - first > 2 && name[first + 1] == '_' &&
         second + 1 < name.size() && name.substr(second + 1) != ".";
}

// ---- Addresses, ordered numerically (IPv4 first) so that answers compare and print stably.

struct Ip {
  int family = AF_INET;
  std::array<unsigned char, 16> bytes{};
  auto operator<=>(const Ip&) const = default;
};

struct Endpoint {
  Ip ip;
  uint16_t port = 0;
  auto operator<=>(const Endpoint&) const = default;

  std::string text() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(ip.family, ip.bytes.data(), buf, sizeof buf);
    return joinHostPort(buf, port);
  }
};

std::string lower(std::string_view name) {
  std::string out(name.ends_with('.') ? name.substr(0, name.size() - 1) : name);
  for (char& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// ---- One c-ares channel: questions out, answers in, never past a deadline.

struct Question {
  std::string name;
  int type = ns_t_a;  // ns_t_a, ns_t_aaaa or ns_t_srv.
};

const char* typeName(int type) {
  switch (type) {
    case ns_t_a:
      return "A";
    case ns_t_aaaa:
      return "AAAA";
    case ns_t_srv:
      return "SRV";
    default:
      return "?";
  }
}

struct Reply {
  int status = ARES_ECANCELLED;        // c-ares' verdict; ENODATA and ENOTFOUND are answers.
  std::vector<unsigned char> message;  // The whole DNS message when status is ARES_SUCCESS.
};

/// c-ares wants its library initialised once per process before any channel.
int libraryStatus() {
  static std::once_flag once;
  static int status = ARES_SUCCESS;
  std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
  return status;
}

class Channel {
 public:
  /// A channel to `server` ("" = the system's), or nullptr and `error` set.
  static std::unique_ptr<Channel> open(const std::string& server, std::chrono::milliseconds timeout,
                                       std::string& error) {
    if (const int rc = libraryStatus(); rc != ARES_SUCCESS) {
      error = std::string("cannot start c-ares: ") + ares_strerror(rc);
      return nullptr;
    }
    auto channel = std::unique_ptr<Channel>(new Channel());
    // c-ares 1.18 reports a SERVFAIL or REFUSED from its last server as "connection
    // refused". With one server there is nothing to fail over to, so it may as well hand us
    // the answer's code as it came (NOCHECKRESP) and the error can say which it was.
    if (!server.empty()) {
      return channel->init(server, timeout, ARES_FLAG_NOCHECKRESP, error) ? std::move(channel)
                                                                          : nullptr;
    }
    if (!channel->init(server, timeout, 0, error)) {
      return nullptr;
    }
    if (channel->server_count_ <= 1 &&
        !channel->init(server, timeout, ARES_FLAG_NOCHECKRESP, error)) {
      return nullptr;
    }
    return channel;
  }

  ~Channel() {
    if (channel_ != nullptr) {
      ares_destroy(channel_);
    }
  }

  /// Asks every question at once; returns when all are answered or at `deadline` (those
  /// left are ARES_ECANCELLED).
  std::vector<Reply> ask(const std::vector<Question>& questions, Clock::time_point deadline) {
    std::vector<Reply> replies(questions.size());
    std::vector<Slot> slots(questions.size());
    size_t pending = questions.size();
    for (size_t i = 0; i < questions.size(); ++i) {
      slots[i] = Slot{&replies[i], &pending};
      ares_query(channel_, questions[i].name.c_str(), ns_c_in, questions[i].type, &Channel::done,
                 &slots[i]);
    }
    while (pending > 0) {
      const auto now = Clock::now();
      if (now >= deadline) {
        ares_cancel(channel_);  // Runs the callbacks left, at once, with ARES_ECANCELLED.
        break;
      }
      if (!waitAndProcess(deadline - now)) {
        ares_cancel(channel_);
        break;
      }
    }
    return replies;
  }

  /// The names to ask for `name`, in order: resolv.conf's search rules (ndots, search
  /// domains) for the system's resolver, as the C library applies them; `name` alone when it
  /// ends with a dot or the server was given.
  std::vector<std::string> candidates(const std::string& name) const {
    if (!search_ || name.ends_with('.') || domains_.empty()) {
      return {name};
    }
    const auto dots = std::count(name.begin(), name.end(), '.');
    std::vector<std::string> out;
    if (dots >= ndots_) {
      out.push_back(name);
    }
    for (const auto& domain : domains_) {
      out.push_back(name + "." + domain);
    }
    if (dots < ndots_) {
      out.push_back(name);
    }
    return out;
  }

  /// Who was asked, for error messages.
  const std::string& servers() const { return servers_; }
  int serverCount() const { return server_count_; }
  /// Set when the wait itself failed (not the lookups).
  const std::string& pollError() const { return poll_error_; }

 private:
  struct Slot {
    Reply* reply = nullptr;
    size_t* pending = nullptr;
  };

  Channel() = default;

  static void done(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* slot = static_cast<Slot*>(arg);
    slot->reply->status = status;
    if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) {
      slot->reply->message.assign(abuf, abuf + alen);
    }
    --*slot->pending;
  }

  /// One poll(2) over c-ares' sockets (ares_getsock, not select: the relay's descriptors may
  /// be past FD_SETSIZE), bounded by c-ares' next timeout and `left`. False if poll failed.
  bool waitAndProcess(Clock::duration left) {
    std::array<ares_socket_t, ARES_GETSOCK_MAXNUM> socks{};
    const int bits = ares_getsock(channel_, socks.data(), ARES_GETSOCK_MAXNUM);
    std::vector<pollfd> fds;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      const bool readable = ARES_GETSOCK_READABLE(bits, i) != 0;
      const bool writable = ARES_GETSOCK_WRITABLE(bits, i) != 0;
      if (readable || writable) {
        const short events = static_cast<short>((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
        fds.push_back(pollfd{socks[static_cast<size_t>(i)], events, 0});
      }
    }
    const auto left_us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
    timeval max_wait{static_cast<time_t>(left_us / 1000000),
                     static_cast<suseconds_t>(left_us % 1000000)};
    timeval storage{};
    const timeval* wait = ares_timeout(channel_, &max_wait, &storage);
    const int wait_ms = static_cast<int>(wait->tv_sec * 1000 + (wait->tv_usec + 999) / 1000);
    const int ready = ::poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) {
        return true;  // The caller's loop recomputes what is left.
      }
      poll_error_ = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    if (ready == 0) {
      ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // Timeouts and retries.
      return true;
    }
    for (const auto& p : fds) {
      if (p.revents == 0) {
        continue;
      }
      const bool error = (p.revents & (POLLERR | POLLHUP)) != 0;
      ares_process_fd(channel_, (p.revents & POLLIN) != 0 || error ? p.fd : ARES_SOCKET_BAD,
                      (p.revents & POLLOUT) != 0 || error ? p.fd : ARES_SOCKET_BAD);
    }
    return true;
  }

  /// (Re)creates the c-ares channel with `flags`. False and `error` set on failure.
  bool init(const std::string& server, std::chrono::milliseconds timeout, int flags,
            std::string& error) {
    if (channel_ != nullptr) {
      ares_destroy(channel_);
      channel_ = nullptr;
    }
    ares_options options{};
    // Two tries (UDP loses packets); c-ares doubles the second one's wait, so a third of the
    // budget each keeps one server's whole lookup inside it. The deadline in ask() is the
    // bound that holds whatever the server list.
    options.timeout = static_cast<int>(std::max<long>(1, timeout.count() / 3));
    options.tries = 2;
    options.flags = flags;
    const int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | (flags != 0 ? ARES_OPT_FLAGS : 0);
    int rc = ares_init_options(&channel_, &options, mask);
    if (rc != ARES_SUCCESS) {
      channel_ = nullptr;
      error = std::string("cannot start c-ares: ") + ares_strerror(rc);
      return false;
    }
    if (server.empty()) {
      readSystemConfig();
      return true;
    }
    rc = ares_set_servers_ports_csv(channel_, server.c_str());
    if (rc != ARES_SUCCESS) {
      error = "DNS server \"" + server + "\": " + ares_strerror(rc);
      return false;
    }
    servers_ = server;
    server_count_ = 1;
    return true;
  }

  /// The search domains, ndots and servers c-ares read from /etc/resolv.conf.
  void readSystemConfig() {
    search_ = true;
    domains_.clear();
    server_count_ = 0;
    ares_options saved{};
    int mask = 0;
    if (ares_save_options(channel_, &saved, &mask) == ARES_SUCCESS) {
      ndots_ = saved.ndots;
      for (int i = 0; i < saved.ndomains; ++i) {
        domains_.emplace_back(saved.domains[i]);
      }
      ares_destroy_options(&saved);
    }
    std::string list;
    ares_addr_port_node* nodes = nullptr;
    if (ares_get_servers_ports(channel_, &nodes) == ARES_SUCCESS) {
      for (const auto* n = nodes; n != nullptr; n = n->next) {
        ++server_count_;
        char buf[INET6_ADDRSTRLEN] = {};
        inet_ntop(n->family, &n->addr, buf, sizeof buf);
        const int port = n->udp_port != 0 ? n->udp_port : 53;
        list += (list.empty() ? "" : ", ") + joinHostPort(buf, static_cast<uint16_t>(port));
      }
      ares_free_data(nodes);
    }
    servers_ = "the system's resolver (" + (list.empty() ? "no nameserver" : list) + ")";
  }

  ares_channel channel_ = nullptr;
  bool search_ = false;
  int ndots_ = 1;
  int server_count_ = 0;
  std::vector<std::string> domains_;
  std::string servers_;
  std::string poll_error_;
};

// ---- Reading answers.

/// The addresses of an A or AAAA answer (its CNAMEs followed): nullopt for a malformed one.
std::optional<std::vector<Ip>> addressesOf(const Reply& reply, int type) {
  hostent* host = nullptr;
  const int size = static_cast<int>(reply.message.size());
  const int rc = type == ns_t_a
                     ? ares_parse_a_reply(reply.message.data(), size, &host, nullptr, nullptr)
                     : ares_parse_aaaa_reply(reply.message.data(), size, &host, nullptr, nullptr);
  std::vector<Ip> out;
  if (rc == ARES_ENODATA) {
    return out;  // Only CNAMEs, or records of another type: no address, and an answer.
  }
  if (rc != ARES_SUCCESS || host == nullptr) {
    if (host != nullptr) {
      ares_free_hostent(host);
    }
    return std::nullopt;
  }
  const size_t length = type == ns_t_a ? 4 : 16;
  const bool shape_ok =
      host->h_addrtype == (type == ns_t_a ? AF_INET : AF_INET6) && host->h_length == int(length);
  for (char** a = host->h_addr_list; shape_ok && a != nullptr && *a != nullptr; ++a) {
    Ip ip;
    ip.family = host->h_addrtype;
    std::memcpy(ip.bytes.data(), *a, length);
    out.push_back(ip);
    if (out.size() > kMaxDnsAddresses) {
      break;  // The caller fails the lookup: counting further is pointless.
    }
  }
  ares_free_hostent(host);
  if (!shape_ok) {
    return std::nullopt;
  }
  return out;
}

struct SrvRecord {
  std::string target;  // Lower case, no trailing dot.
  uint16_t port = 0;
};

/// The SRV records of an answer: nullopt for a malformed one. "." targets (RFC 2782: the
/// service is decidedly not offered) and port 0 name no daemon and are left out.
std::optional<std::vector<SrvRecord>> serviceRecordsOf(const Reply& reply) {
  ares_srv_reply* list = nullptr;
  const int rc =
      ares_parse_srv_reply(reply.message.data(), static_cast<int>(reply.message.size()), &list);
  std::vector<SrvRecord> out;
  if (rc == ARES_ENODATA) {
    return out;
  }
  if (rc != ARES_SUCCESS) {
    return std::nullopt;
  }
  for (const auto* r = list; r != nullptr && out.size() <= kMaxDnsAddresses; r = r->next) {
    const std::string target = lower(r->host != nullptr ? r->host : "");
    if (!target.empty() && r->port != 0) {
      out.push_back(SrvRecord{target, r->port});
    }
  }
  ares_free_data(list);
  return out;
}

/// The A and AAAA records of a message's additional section, by owner name (lower case, no
/// trailing dot): servers (CoreDNS, dnsmasq) send the SRV targets' addresses there, which
/// saves asking for each target. Empty when the message does not parse (then each target is
/// asked for, so a mistake here costs questions, never daemons).
std::map<std::string, std::vector<Ip>> additionalAddresses(const std::vector<unsigned char>& m) {
  std::map<std::string, std::vector<Ip>> out;
  if (m.size() < 12) {
    return out;
  }
  const auto u16 = [&](size_t at) { return static_cast<unsigned>(m[at] << 8 | m[at + 1]); };
  const size_t questions = u16(4);
  const size_t records = size_t{u16(6)} + u16(8) + u16(10);
  const size_t additional_from = size_t{u16(6)} + u16(8);
  size_t at = 12;
  // One (possibly compressed) name at `at`, stepped over; its text in `owner` if asked.
  const auto name = [&](std::string* owner) {
    if (at >= m.size()) {
      return false;
    }
    char* text = nullptr;
    long used = 0;
    if (ares_expand_name(m.data() + at, m.data(), static_cast<int>(m.size()), &text, &used) !=
        ARES_SUCCESS) {
      return false;
    }
    if (owner != nullptr) {
      *owner = lower(text);
    }
    ares_free_string(text);
    at += static_cast<size_t>(used);
    return used > 0 && at <= m.size();
  };
  for (size_t q = 0; q < questions; ++q) {
    if (!name(nullptr) || at + 4 > m.size()) {
      return {};
    }
    at += 4;  // Type and class.
  }
  for (size_t r = 0; r < records; ++r) {
    std::string owner;
    if (!name(&owner) || at + 10 > m.size()) {
      return {};
    }
    const unsigned type = u16(at);
    const unsigned klass = u16(at + 2);
    const size_t length = u16(at + 8);
    at += 10;
    if (at + length > m.size()) {
      return {};
    }
    const bool v4 = type == ns_t_a && length == 4;
    const bool v6 = type == ns_t_aaaa && length == 16;
    if (r >= additional_from && klass == ns_c_in && (v4 || v6)) {
      Ip ip;
      ip.family = v4 ? AF_INET : AF_INET6;
      std::memcpy(ip.bytes.data(), m.data() + at, length);
      out[owner].push_back(ip);
    }
    at += length;
  }
  return out;
}

// ---- One resolve(): the questions in order, a failure of any ending it.

using Found = Result<std::vector<Endpoint>, std::string>;

class Lookup {
 public:
  Lookup(Channel& channel, Clock::time_point deadline, std::chrono::milliseconds timeout)
      : channel_(channel), deadline_(deadline), timeout_(timeout) {}

  /// NAME's A and AAAA records, each with `port`.
  Found hosts(const std::string& name, uint16_t port) {
    for (const auto& candidate : channel_.candidates(name)) {
      auto found = addressesFor({candidate}, port);
      if (!found || !found.value().empty()) {
        return found;
      }
      // NXDOMAIN or NODATA for both families: the next search domain, as the C library does.
    }
    return std::vector<Endpoint>{};
  }

  /// The SRV records of NAME, then their targets' addresses with the records' ports.
  Found service(const std::string& name) {
    for (const auto& candidate : channel_.candidates(name)) {
      const Question question{candidate, ns_t_srv};
      auto replies = channel_.ask({question}, deadline_);
      const Reply& reply = replies.front();
      if (reply.status == ARES_ENODATA || reply.status == ARES_ENOTFOUND) {
        continue;
      }
      if (reply.status != ARES_SUCCESS) {
        return makeErr(failure(question, reply.status));
      }
      const auto records = serviceRecordsOf(reply);
      if (!records) {
        return makeErr(failure(question, ARES_EBADRESP));
      }
      if (records->size() > kMaxDnsAddresses) {
        return makeErr(tooMany(question));
      }
      return targets(*records, additionalAddresses(reply.message));
    }
    return std::vector<Endpoint>{};
  }

 private:
  /// A and AAAA of every name at once (one round): the addresses, each with `port`; a
  /// failure of any question fails them all (a partial answer would drop daemons).
  Found addressesFor(const std::vector<std::string>& names, uint16_t port) {
    return addressesWithPorts(names, [port](size_t) { return std::vector<uint16_t>{port}; });
  }

  /// The same, the ports of names[i] being ports_of(i).
  template <class PortsOf>
  Found addressesWithPorts(const std::vector<std::string>& names, PortsOf ports_of) {
    std::vector<Question> questions;
    for (const auto& n : names) {
      questions.push_back(Question{n, ns_t_a});
      questions.push_back(Question{n, ns_t_aaaa});
    }
    const auto replies = channel_.ask(questions, deadline_);
    std::vector<Endpoint> out;
    for (size_t i = 0; i < questions.size(); ++i) {
      const Reply& reply = replies[i];
      if (reply.status == ARES_ENODATA || reply.status == ARES_ENOTFOUND) {
        continue;
      }
      if (reply.status != ARES_SUCCESS) {
        return makeErr(failure(questions[i], reply.status));
      }
      const auto ips = addressesOf(reply, questions[i].type);
      if (!ips) {
        return makeErr(failure(questions[i], ARES_EBADRESP));
      }
      if (ips->size() > kMaxDnsAddresses) {
        return makeErr(tooMany(questions[i]));
      }
      for (const auto port : ports_of(i / 2)) {
        for (const auto& ip : *ips) {
          out.push_back(Endpoint{ip, port});
        }
      }
    }
    return out;
  }

  /// The records' targets: from the additional section when it has addresses for them, else
  /// asked for (all at once).
  Found targets(const std::vector<SrvRecord>& records,
                const std::map<std::string, std::vector<Ip>>& additional) {
    std::vector<Endpoint> out;
    std::map<std::string, std::vector<uint16_t>> to_ask;  // Target -> the ports it serves.
    for (const auto& r : records) {
      const auto known = additional.find(r.target);
      if (known == additional.end()) {
        to_ask[r.target].push_back(r.port);
        continue;
      }
      for (const auto& ip : known->second) {
        out.push_back(Endpoint{ip, r.port});
      }
    }
    if (to_ask.empty()) {
      return out;
    }
    std::vector<std::string> names;
    std::vector<std::vector<uint16_t>> ports;
    for (auto& [target, target_ports] : to_ask) {
      names.push_back(target + ".");  // Targets are absolute names: no search domains.
      ports.push_back(std::move(target_ports));
    }
    auto asked = addressesWithPorts(names, [&ports](size_t i) { return ports[i]; });
    if (!asked) {
      return asked;
    }
    out.insert(out.end(), asked.value().begin(), asked.value().end());
    return out;
  }

  std::string failure(const Question& q, int status) const {
    const std::string what = std::string(typeName(q.type)) + " " + q.name + ": ";
    const std::string& from = channel_.servers();
    switch (status) {
      case ARES_ETIMEOUT:
      case ARES_ECANCELLED:
        if (!channel_.pollError().empty()) {
          return what + channel_.pollError();
        }
        return what + "timeout after " + std::to_string(timeout_.count()) + " ms from " + from;
      case ARES_ESERVFAIL:
        return what + "SERVFAIL from " + from;
      case ARES_EREFUSED:
        return what + "REFUSED from " + from;
      case ARES_ENOTIMP:
        return what + "NOTIMP from " + from;
      case ARES_EFORMERR:
        return what + "FORMERR from " + from;
      case ARES_ECONNREFUSED:
        if (channel_.serverCount() > 1) {  // See Channel::open(): c-ares cannot say which.
          return what + "no answer from " + from + " (each refused, failed or was unreachable)";
        }
        return what + "connection refused by " + from;
      case ARES_EBADRESP:
        return what + "malformed answer from " + from;
      default:
        return what + ares_strerror(status) + " (" + from + ")";
    }
  }

  static std::string tooMany(const Question& q) {
    return std::string(typeName(q.type)) + " " + q.name + ": more than " +
           std::to_string(kMaxDnsAddresses) +
           " records (the limit; a shortened list would drop daemons)";
  }

  Channel& channel_;
  Clock::time_point deadline_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::string DnsQuery::text() const {
  return port == 0 ? name : name + ":" + std::to_string(port);
}

Result<DnsQuery, std::string> parseDnsQuery(std::string_view text) {
  const std::string shown = "\"" + log::printable(text.substr(0, 300)) + "\"";
  const auto fail = [&](const std::string& why) { return makeErr(shown + " " + why); };
  if (text.empty()) {
    return makeErr(
        std::string("empty: expected NAME:PORT (A and AAAA) or _service._proto.NAME (SRV)"));
  }
  DnsQuery query;
  const size_t colon = text.rfind(':');
  if (colon != std::string_view::npos) {
    query.name = std::string(text.substr(0, colon));
    const std::string_view digits = text.substr(colon + 1);
    if (query.name.find(':') != std::string::npos || query.name.starts_with('[')) {
      return fail("is an address, not a DNS name (addresses go to --source)");
    }
    if (digits.empty()) {
      return fail("has no port after ':'");
    }
    if (digits.size() > 5 || digits.find_first_not_of("0123456789") != std::string_view::npos) {
      return fail("has no port after ':' (1 to 65535)");
    }
    const unsigned long port = std::stoul(std::string(digits));
    if (port == 0 || port > 65535) {
      return fail("has port " + std::to_string(port) + ", not one of 1 to 65535");
    }
    query.port = static_cast<uint16_t>(port);
    if (query.name.starts_with('_')) {
      return fail("is an SRV name with a port: SRV records carry the ports, drop \":PORT\"");
    }
  } else {
    query.name = std::string(text);
    if (!query.name.starts_with('_')) {
      return fail("has no port: expected NAME:PORT (A and AAAA) or _service._proto.NAME (SRV)");
    }
  }
  if (const auto problem = nameProblem(query.name); !problem.empty()) {
    return fail("is not a DNS name: " + problem);
  }
  if (query.port == 0 && !isServiceName(query.name)) {
    return fail("is not _service._proto.NAME (an SRV name) nor NAME:PORT");
  }
  in_addr v4{};
  const std::string bare = lower(query.name);
  if (inet_pton(AF_INET, bare.c_str(), &v4) == 1) {
    return fail("is an address, not a DNS name (addresses go to --source)");
  }
  return query;
}

Result<std::string, std::string> parseDnsServer(std::string_view text) {
  const std::string shown = "\"" + log::printable(text.substr(0, 300)) + "\"";
  const auto host_port = parseHostPort(text);
  if (!host_port || host_port->host.empty()) {
    return makeErr(shown + " is not HOST:PORT");
  }
  const uint16_t port = host_port->port.value_or(53);
  if (port == 0) {
    return makeErr(shown + " has port 0");
  }
  in_addr v4{};
  in6_addr v6{};
  const char* host = host_port->host.c_str();
  if (inet_pton(AF_INET, host, &v4) != 1 && inet_pton(AF_INET6, host, &v6) != 1) {
    return makeErr(shown +
                   " is not an IPv4 or IPv6 address (a DNS server cannot itself be looked up)");
  }
  return joinHostPort(host_port->host, port);
}

DnsResolver::DnsResolver(std::string server, std::chrono::milliseconds timeout)
    : timeout_(std::max(timeout, std::chrono::milliseconds(1))) {
  if (server.empty()) {
    return;
  }
  auto parsed = parseDnsServer(server);
  if (parsed) {
    server_ = parsed.value();
  } else {
    server_error_ = "DNS server " + parsed.error();
  }
}

DnsResolver::~DnsResolver() = default;

DnsAnswer DnsResolver::resolve(const DnsQuery& query) const {
  DnsAnswer answer;
  if (!server_error_.empty()) {
    answer.error = server_error_;
    return answer;
  }
  const auto deadline = Clock::now() + timeout_;
  auto channel = Channel::open(server_, timeout_, answer.error);
  if (!channel) {
    return answer;
  }
  Lookup lookup(*channel, deadline, timeout_);
  auto found = query.port != 0 ? lookup.hosts(query.name, query.port) : lookup.service(query.name);
  if (!found) {
    answer.error = found.error();
    return answer;
  }
  auto& endpoints = found.value();
  std::sort(endpoints.begin(), endpoints.end());
  endpoints.erase(std::unique(endpoints.begin(), endpoints.end()), endpoints.end());
  if (endpoints.size() > kMaxDnsAddresses) {
    answer.error = query.text() + ": " + std::to_string(endpoints.size()) +
                   " addresses, more than the " + std::to_string(kMaxDnsAddresses) +
                   " a lookup may give (a shortened list would drop daemons)";
    return answer;
  }
  answer.ok = true;
  answer.addresses.reserve(endpoints.size());
  for (const auto& e : endpoints) {
    answer.addresses.push_back(e.text());
  }
  return answer;
}

}  // namespace epmdx::fleet
