#pragma once

// Is a registered node alive? Connecting to its distribution port proves nothing: the
// kernel of a SIGSTOPped or wedged VM still completes the TCP handshake. So a probe also
// sends one empty distribution packet (length 0), which the VM's own code must read and
// reject: its handshake process finds no name in it and exits, closing the connection.
// That close is the VM's answer. It logs nothing and creates no state on the node
// (docs/dead-names.md has the reading of OTP's dist_util and the evidence).
//
// A Prober runs on its own thread and io_context and probes many nodes concurrently, each
// with a timeout. Results come by callback, on the prober's thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace epmdx::probe {

enum class Liveness : uint8_t {
  Alive,         // The VM answered (closed the connection on our packet, or sent bytes).
  Unresponsive,  // No answer within the timeout, or no connection at all.
};

std::string_view toString(Liveness liveness);  // "alive", "unresponsive".

/// Why a probe found no answer: a policy may treat a hung VM (NoAnswer) differently from a
/// port nobody listens on (Refused: the VM is gone, or listens on another address).
enum class Failure : uint8_t {
  None,          // Alive.
  NoAnswer,      // Connected (the kernel accepted), but the VM did not react in time.
  NoConnection,  // The connect itself timed out (full accept queue, silent network).
  Refused,       // Nothing listens on that address and port.
  Error,         // Anything else (detail says what), an invalid address included.
};

std::string_view toString(Failure failure);  // "none", "no_answer", "no_connection", ...

struct ProbeTarget {
  /// An IP literal ("127.0.0.1", "::1"): the address the node registered from (the
  /// registration's peer address) reaches its distribution listener on this host.
  std::string address;
  uint16_t port = 0;  // The port the node registered.
  /// The node runs TLS distribution (`-proto_dist inet_tls`): probe with a TLS handshake
  /// instead of the empty packet (which its ssl code refuses with a logged notice). A
  /// watched target switches by itself when a probe meets TLS.
  bool tls = false;
};

struct ProbeResult {
  Liveness liveness = Liveness::Unresponsive;
  Failure failure = Failure::Error;
  /// Alive: what the node did ("closed the connection", ...). Unresponsive: why ("timeout:
  /// connected, no answer in 500 ms", "timeout: no connection in 500 ms",
  /// "connection refused", "connection reset", "invalid address ...").
  std::string detail;
  std::chrono::microseconds elapsed{0};  // From the start of the connect to the verdict.
  /// Watched targets only: the verdict differs from the previous one (or is the first).
  bool changed = false;
  /// Watched targets only: unresponsive verdicts in a row, this one included.
  uint32_t consecutive_failures = 0;
  /// The node answered the plain probe with a TLS alert: it runs TLS distribution.
  bool tls_detected = false;
};

struct ProberOptions {
  /// Between the end of one probe of a target and the start of the next.
  std::chrono::milliseconds interval{5000};
  /// Per probe, connect and answer together.
  std::chrono::milliseconds timeout{2000};
  /// Probes running at once; more wait their turn (each holds a socket).
  size_t max_in_flight = 256;
};

class Prober {
 public:
  /// Called on the prober's thread for every verdict of a watched target. Must not block and
  /// must not destroy the Prober; it may call watch()/unwatch().
  using OnResult = std::function<void(uint64_t id, const ProbeResult& result)>;
  using OnOnce = std::function<void(const ProbeResult& result)>;

  Prober(ProberOptions options, OnResult on_result);
  /// Cancels every probe and joins the thread; no callback runs after it returns (nor while
  /// it runs, once the thread has seen the stop).
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  /// Probes `target` now and then every interval, reporting each verdict under `id` (a
  /// registration id, say). Watching an id again replaces its target. Thread-safe.
  void watch(uint64_t id, ProbeTarget target);
  /// Stops probing `id`; a probe in flight finishes silently. Thread-safe.
  void unwatch(uint64_t id);
  /// One probe, outside any schedule; `done` runs on the prober's thread. Thread-safe.
  void probeOnce(ProbeTarget target, OnOnce done);

  const ProberOptions& options() const { return options_; }

 private:
  class Impl;
  const ProberOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace epmdx::probe
