#include "tests/support/dnsmasq.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <stdexcept>

#include "tests/support/net.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;

std::string dnsmasqBinary() {
  return access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
}

/// Writes `path` whole or not at all (a rename): dnsmasq never reads half a file.
void writeAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) {
      throw std::runtime_error("cannot write " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename " + tmp);
  }
}

/// The process state letter in /proc/PID/stat ('T' when stopped), or 0.
char processState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');  // The command name may hold spaces.
  return close == std::string::npos || close + 2 >= stat.size() ? 0 : stat[close + 2];
}

}  // namespace

std::optional<DnsReplyHeader> queryDns(uint16_t port, const std::string& name, int type,
                                       std::chrono::milliseconds timeout) {
  static std::mt19937 random(std::random_device{}());
  const auto id = static_cast<uint16_t>(random());
  std::string q;
  q += static_cast<char>(id >> 8);
  q += static_cast<char>(id & 0xff);
  q += std::string("\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);  // RD; one question.
  for (size_t start = 0; start < name.size();) {
    auto dot = name.find('.', start);
    dot = dot == std::string::npos ? name.size() : dot;
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += std::string("\x00\x01", 2);  // Class IN.
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return std::nullopt;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::optional<DnsReplyHeader> out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
      send(fd, q.data(), q.size(), 0) == static_cast<ssize_t>(q.size())) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        break;
      }
      unsigned char reply[4096];
      const ssize_t n = recv(fd, reply, sizeof reply, 0);
      if (n < 0) {
        break;  // ECONNREFUSED: nothing listens.
      }
      if (n >= 12 && (reply[0] << 8 | reply[1]) == id && (reply[2] & 0x80) != 0) {
        out = DnsReplyHeader{reply[3] & 0x0f, reply[6] << 8 | reply[7]};
        break;
      }
    }
  }
  close(fd);
  return out;
}

Dnsmasq::Dnsmasq(std::string zone) : zone_(std::move(zone)) {
  std::string templ = "/tmp/epmdx-dnsmasq-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  dir_ = templ;
  writeHosts();
  writeConfig();
  // A free TCP port may still be taken for UDP: a few tries, each with a fresh port.
  for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
    port_ = freePort();
    start();
  }
  if (!process_) {
    throw std::runtime_error("dnsmasq did not start: " + old_log_);
  }
}

Dnsmasq::~Dnsmasq() {
  process_.reset();  // SIGKILL to its group (a stopped process too), reaped.
  for (const char* f : {"/hosts", "/dnsmasq.conf"}) {
    unlink((dir_ + f).c_str());
  }
  rmdir(dir_.c_str());
}

std::string Dnsmasq::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

void Dnsmasq::start() {
  process_ = std::make_unique<Process>(std::vector<std::string>{
      dnsmasqBinary(),
      "--conf-file=" + dir_ + "/dnsmasq.conf",  // Ours only: never /etc/dnsmasq.conf.
      "--no-resolv", "--no-hosts",
      "--no-daemon",       // Foreground, no pid file, no user change, TCP in-process.
      "--log-facility=-",  // Its log to stderr only, never the machine's syslog.
      "--log-queries", "--bind-interfaces", "--listen-address=127.0.0.1",
      "--port=" + std::to_string(port_), "--addn-hosts=" + dir_ + "/hosts",
      "--local=/" + zone_ + "/"});  // NXDOMAIN for the zone's unknown names.
  const std::string marker = "epmdx-fixture-gen-" + std::to_string(generation_) + "." + zone_;
  const bool up = eventually(
      [&] {
        if (!process_->running()) {
          return true;  // Failed: told apart below.
        }
        const auto r = queryDns(port_, marker, 1, 200ms);
        return r && r->rcode == 0 && r->answers > 0;
      },
      10s);
  if (up && process_->running()) {
    return;
  }
  old_log_ += process_->stdoutText() + process_->stderrText();
  process_.reset();
}

void Dnsmasq::writeHosts() {
  std::string text =
      "127.0.0.1 epmdx-fixture-gen-" + std::to_string(generation_) + "." + zone_ + "\n";
  for (const auto& [name, ips] : hosts_) {
    for (const auto& ip : ips) {
      text += ip + " " + name + "\n";
    }
  }
  writeAtomically(dir_ + "/hosts", text);
}

void Dnsmasq::writeConfig() {
  std::string text = "# tests/support/dnsmasq.cc: SRV records (the rest is on its command line)\n";
  for (const auto& [name, records] : srv_) {
    for (const auto& r : records) {
      text += "srv-host=" + name + "," + r.target + "," + std::to_string(r.port) + "," +
              std::to_string(r.priority) + "," + std::to_string(r.weight) + "\n";
    }
  }
  writeAtomically(dir_ + "/dnsmasq.conf", text);
}

void Dnsmasq::waitServing() {
  const std::string marker = "epmdx-fixture-gen-" + std::to_string(generation_) + "." + zone_;
  const bool served = eventually(
      [&] {
        const auto r = queryDns(port_, marker, 1, 200ms);
        return r && r->rcode == 0 && r->answers > 0;
      },
      10s);
  if (!served) {
    throw std::runtime_error("dnsmasq does not serve " + marker + ": " + log());
  }
}

void Dnsmasq::setHosts(const std::map<std::string, std::vector<std::string>>& hosts) {
  hosts_ = hosts;
  ++generation_;
  writeHosts();
  process_->signal(SIGHUP);  // dnsmasq re-reads --addn-hosts (and clears its cache).
  waitServing();
}

void Dnsmasq::setSrv(const std::map<std::string, std::vector<Srv>>& records) {
  srv_ = records;
  writeConfig();
  old_log_ += process_->stdoutText() + process_->stderrText();
  process_.reset();
  for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
    start();  // The same port: a killed dnsmasq's sockets are gone at once.
  }
  if (!process_) {
    throw std::runtime_error("dnsmasq did not restart on port " + std::to_string(port_) + ": " +
                             old_log_);
  }
}

void Dnsmasq::pause() {
  process_->signal(SIGSTOP);
  if (!eventually([&] { return processState(process_->pid()) == 'T'; }, 5s)) {
    throw std::runtime_error("dnsmasq did not stop");
  }
}

void Dnsmasq::resume() {
  process_->signal(SIGCONT);
  if (!eventually([&] { return processState(process_->pid()) != 'T'; }, 5s)) {
    throw std::runtime_error("dnsmasq did not continue");
  }
}

std::string Dnsmasq::log() const {
  return old_log_ + (process_ ? process_->stdoutText() + process_->stderrText() : "");
}

}  // namespace epmdx::testing
