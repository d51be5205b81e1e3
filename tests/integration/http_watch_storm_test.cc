// A reconnect storm: 1,000 SSE watchers open /v1/watch?initial=true at
// once against the real epmdx binary with 20 names registered (dashboards after a daemon
// restart). The initial states wait for the one HTTP worker by their size, not by a count of
// requests, so every watcher gets its 200 and its whole initial state, none a 503, within a
// bound; and each one then gets the next change.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/epmdx_daemon.h"
#include "tests/support/net.h"
#include "tests/support/raw_http.h"

namespace epmdx::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kNames = 20;
constexpr int kWatchers = 1000;
constexpr auto kBound = 20s;  // Measured well under 2 s; the bound is for a loaded CI machine.

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = 0; (at = text.find(needle, at)) != std::string::npos; at += needle.size()) {
    ++n;
  }
  return n;
}

/// Reads every connection until `done(buffer)` holds for each, or the deadline; returns
/// how many are done. A connection the daemon closes is not done.
int readUntilAll(std::vector<std::unique_ptr<RawHttp>>& conns,
                 const std::function<bool(const std::string&)>& done, Clock::time_point deadline) {
  std::vector<bool> finished(conns.size(), false);
  std::vector<bool> closed(conns.size(), false);
  int count = 0;
  while (count < static_cast<int>(conns.size()) && Clock::now() < deadline) {
    std::vector<pollfd> fds;
    std::vector<size_t> index;
    for (size_t i = 0; i < conns.size(); ++i) {
      if (!finished[i] && !closed[i]) {
        fds.push_back({conns[i]->fd(), POLLIN, 0});
        index.push_back(i);
      }
    }
    if (fds.empty()) {
      break;
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) {
      continue;
    }
    for (size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) {
        continue;
      }
      const size_t i = index[k];
      char chunk[65536];
      const ssize_t n = recv(fds[k].fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n > 0) {
        conns[i]->buffered().append(chunk, static_cast<size_t>(n));
        if (done(conns[i]->buffered())) {
          finished[i] = true;
          ++count;
        }
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed[i] = true;
      }
    }
  }
  return count;
}

TEST(WatchStorm, ThousandInitialStatesAtOnceAgainstTwentyNamesAreAllServed) {
  raiseFileLimit();
  EpmdxDaemon d({"--max-watchers=" + std::to_string(kWatchers)});
  ASSERT_TRUE(d.ready()) << d.process().stderrText();
  const uint16_t http = d.httpPort();
  std::vector<int> nodes;
  for (int i = 0; i < kNames; ++i) {
    const int fd = connectTo("127.0.0.1", d.epmdPort());
    ASSERT_TRUE(sendAll(fd, frame(alive2Body("storm" + std::to_string(i), 9000 + i))));
    ASSERT_EQ(readN(fd, 6, 2000ms).substr(0, 2), std::string("v\0", 2));
    nodes.push_back(fd);
  }

  // Connect all first, then send every request back to back: they arrive together.
  std::vector<std::unique_ptr<RawHttp>> conns;
  for (int i = 0; i < kWatchers; ++i) {
    conns.push_back(std::make_unique<RawHttp>(http));
    ASSERT_TRUE(conns.back()->connected()) << i;
  }
  const std::string request = httpRequest("GET", "/v1/watch?initial=true", http);
  const auto start = Clock::now();
  for (auto& c : conns) {
    ASSERT_TRUE(c->send(request));
  }
  // Served: a 200 and an initial frame that completes the state, with every name.
  auto served = [](const std::string& b) {
    const size_t complete = b.find("\"initialStateComplete\":true");
    return complete != std::string::npos && b.find("\n\n", complete) != std::string::npos;
  };
  const int got = readUntilAll(conns, served, start + kBound);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("%d of %d watchers got their whole initial state (%d names) in %.2f s\n", got,
              kWatchers, kNames, seconds);
  RecordProperty("storm_seconds", std::to_string(seconds));
  EXPECT_EQ(got, kWatchers);
  int ok = 0;
  int refused = 0;
  int complete_states = 0;
  for (auto& c : conns) {
    const std::string& b = c->buffered();
    ok += b.rfind("HTTP/1.1 200", 0) == 0 ? 1 : 0;
    refused += b.rfind("HTTP/1.1 503", 0) == 0 ? 1 : 0;
    complete_states += countOf(b, "\"name\":\"storm") == kNames ? 1 : 0;
  }
  EXPECT_EQ(ok, kWatchers);
  EXPECT_EQ(refused, 0);
  EXPECT_EQ(complete_states, kWatchers);
  EXPECT_EQ(metricValue(http, "epmdx_http_busy_total"), "0");
  EXPECT_EQ(metricValue(http, "epmdx_watchers{api=\"sse\"}"), std::to_string(kWatchers));

  // Every stream is live: one more registration reaches all of them.
  for (auto& c : conns) {
    c->buffered().clear();
  }
  const int late = connectTo("127.0.0.1", d.epmdPort());
  ASSERT_TRUE(sendAll(late, frame(alive2Body("late", 9999))));
  ASSERT_EQ(readN(late, 6, 2000ms).substr(0, 2), std::string("v\0", 2));
  const int changed = readUntilAll(
      conns,
      [](const std::string& b) {
        const size_t at = b.find("\"name\":\"late\"");
        return at != std::string::npos && b.find("\n\n", at) != std::string::npos;
      },
      Clock::now() + kBound);
  EXPECT_EQ(changed, kWatchers);
  close(late);
  for (int fd : nodes) {
    close(fd);
  }
}

}  // namespace
}  // namespace epmdx::testing
