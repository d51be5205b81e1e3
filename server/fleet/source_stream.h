#pragma once

// The relay's follower of one source: an epmdx daemon followed through its gRPC API, as a
// Kubernetes informer follows an API server. Per connection: ListClusters (who the source is:
// its host and boot epoch), then WatchNodes, resumed from the last revision applied when the
// source is the same run, else listed whole (send_initial_state). What it learns goes to a
// SourceSink, in order, from the stream's own thread; a connection that fails, ends or falls
// silent is reported and made again with backoff.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "epmdx/v1/registry.grpc.pb.h"

namespace epmdx::fleet {

struct SourceTls {
  bool enabled = false;
  std::string ca_file;    // PEM roots; empty: the system's.
  std::string cert_file;  // Mutual TLS: the relay's certificate (with key_file).
  std::string key_file;
  std::string server_name;  // Checked in the source's certificate instead of the host.
};

struct SourceStreamOptions {
  std::string address;  // HOST:PORT of the source's gRPC API.
  std::string token;    // Presented as "authorization: Bearer TOKEN" ("" none).
  SourceTls tls;
  std::chrono::milliseconds progress_interval{1000};  // Asked of the source (progress_interval_ms).
  std::chrono::milliseconds silence_timeout{3000};    // No message at all for this long: down.
  std::chrono::milliseconds backoff_min{100}, backoff_max{2000};  // Reconnect backoff (jittered).
  std::chrono::milliseconds rpc_timeout{2000};                    // ListClusters, evict, ...
  // HTTP/2 keepalive: a ping this often (never more often than progress_interval, see
  // source_stream.cc), and a connection whose ping is not answered in keepalive_timeout is
  // closed, so that a silent peer is noticed even between RPCs.
  std::chrono::milliseconds keepalive_time{1000};
  std::chrono::milliseconds keepalive_timeout{1000};
};

/// Who a source says it is (ListClusters). boot_epoch 0: the source does not say (unknown).
struct SourceIdentity {
  std::string host;  // ListClusters' instance (--instance-name), else its host.
  uint64_t boot_epoch = 0;
  std::vector<v1::Cluster> clusters;
};

/// What a stream tells the relay, from the stream's own thread, in order. Calls must be quick
/// (the relay only applies them to its registry) and must not call SourceStream::stop(); a
/// call never happens after stop() returned.
class SourceSink {
 public:
  virtual ~SourceSink() = default;
  /// (Re)connected: who the source says it is (ListClusters). Before the snapshot/events of
  /// this connection.
  virtual void onIdentity(const SourceIdentity& identity) = 0;
  /// The source's whole state at `revision` (first list, or a list again: it restarted -- a
  /// new boot_epoch -- or the resume point left its history, OUT_OF_RANGE). Replaces what was
  /// known.
  virtual void onSnapshot(std::vector<v1::Node> nodes, uint64_t revision) = 0;
  /// Changes in the source's order, right after what was last given (no gap, no repeat).
  virtual void onEvents(std::vector<v1::NodeEvent> events, uint64_t revision) = 0;
  /// Nothing changed up to `revision` (a progress message).
  virtual void onProgress(uint64_t revision) = 0;
  /// The connection or stream failed or could not start. `refused`: the source refused the
  /// relay (UNAUTHENTICATED, PERMISSION_DENIED, TLS handshake failure), as `error` says.
  virtual void onDown(const std::string& error, bool refused) = 0;
};

class SourceStream {
 public:
  SourceStream(SourceStreamOptions options, SourceSink& sink);
  ~SourceStream();  // stop()s.
  SourceStream(const SourceStream&) = delete;
  SourceStream& operator=(const SourceStream&) = delete;

  /// Starts following on a thread of its own (once; later calls do nothing).
  void start();
  /// Cancels what is in flight (an RPC, a stream, a backoff wait) and joins the thread:
  /// quick (well under 100 ms). Safe to call twice, and before start().
  void stop();

  /// Forwards an eviction (the relay sets the boot_epoch and registration_id preconditions)
  /// with the stream's token, bounded by rpc_timeout. The source's status comes back as is
  /// (UNAVAILABLE when it cannot be reached).
  grpc::Status evict(const v1::EvictNodeRequest& request, v1::EvictNodeResponse* response);
  grpc::Status liftHold(const v1::LiftHoldRequest& request, v1::LiftHoldResponse* response);

  const SourceStreamOptions& options() const { return options_; }

 private:
  class WatchCall;
  /// How one connection ended: what to tell the sink and how long to wait before the next.
  struct Ending {
    std::string error;
    bool refused = false;
    bool local = false;    // Our own configuration is wrong (address, PEM files).
    bool reached = false;  // The watch delivered something: the backoff starts over.
  };
  /// How one WatchNodes call ended.
  struct WatchEnd {
    bool list_again = false;  // OUT_OF_RANGE, or INVALID_ARGUMENT on a resume.
    bool delivered = false;   // A snapshot, events or a progress reached the sink.
  };

  void run();
  /// One connection: channel, ListClusters, then WatchNodes (listing again as needed) until
  /// it ends. nullopt when it ended because of stop().
  std::optional<Ending> connectOnce();
  /// One WatchNodes call on `stub`, resumed or listed; why it ended goes to `ending`.
  WatchEnd watchOnce(v1::Registry::Stub& stub, Ending& ending);
  /// Reads the started `call` until OnDone, handing each message to the sink and ending the
  /// call on stop(), silence or a broken protocol (`why`). @return its final status.
  grpc::Status follow(WatchCall& call, bool resume, WatchEnd& end, std::string& why);
  /// Why ListClusters failed, as `ending` tells it (refused, transport, timeout).
  void connectFailed(const grpc::Status& status, Ending& ending) const;
  /// How a WatchNodes call that ended with `status` ends the connection, or lists again.
  void watchEnded(const grpc::Status& status, bool resume, WatchEnd& end, Ending& ending);
  /// Hands one message to the sink; false (with `error`) when it breaks the protocol.
  bool deliver(v1::WatchNodesResponse& msg, bool& listing, std::vector<v1::Node>& initial,
               std::string& error);
  /// Waits `delay` or until stop(); false when stopping.
  bool pause(std::chrono::milliseconds delay);
  std::chrono::milliseconds nextBackoff(const Ending& ending);

  /// A new channel per the options (credentials read now, so renewed files count).
  std::shared_ptr<grpc::Channel> makeChannel(std::string& error) const;
  /// The channel evict() and liftHold() use: the current connection's, or a new one.
  std::shared_ptr<grpc::Channel> adminChannel(std::string& error);
  void prepare(grpc::ClientContext& ctx, bool deadline) const;
  /// Registers the call stop() cancels; false when stop() already began.
  bool arm(grpc::ClientContext* ctx);
  void disarm();
  bool stopping() const { return stopping_.load(); }

  const SourceStreamOptions options_;
  SourceSink& sink_;

  std::mutex start_mu_;  // start() and stop()'s join.
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  // The in-flight call of the stream thread, which stop() cancels. Lock order: cancel_mu_
  // before mu_ (a cancel may run the watch's callbacks inline, and they take mu_).
  std::mutex cancel_mu_;
  grpc::ClientContext* active_ = nullptr;  // Guarded by cancel_mu_.

  // Wakes the stream thread: watch callbacks, stop(). Guards channel_ too.
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<grpc::Channel> channel_;

  // The stream thread's own: what it knows of the source across connections.
  std::string host_;
  uint64_t boot_epoch_ = 0;
  std::optional<uint64_t> revision_;  // The last revision the sink was given.
  int failures_ = 0;                  // Connections in a row that reached nothing.
};

}  // namespace epmdx::fleet
