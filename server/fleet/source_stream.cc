#include "server/fleet/source_stream.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>
#include <utility>

#include "server/common/host_port.h"
#include "server/common/log.h"

namespace epmdx::fleet {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// A source that asks to be listed again this many times in a row without delivering
// anything in between is treated as down (a protocol loop, not a resync).
constexpr int kMaxRelists = 3;

std::string codeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "CODE_" + std::to_string(static_cast<int>(code));
  }
}

/// "UNAUTHENTICATED: unknown bearer token".
std::string describe(const grpc::Status& s) {
  std::string text = codeName(s.error_code());
  if (!s.error_message().empty()) {
    text += ": " + s.error_message();
  }
  return text;
}

bool containsNoCase(std::string_view text, std::string_view word) {
  return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}

bool refusedCode(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED;
}

/// A TLS failure in gRPC's transport text ("Ssl handshake failed: ...", "Handshake failed").
bool tlsFailure(std::string_view message) {
  return containsNoCase(message, "handshake") || containsNoCase(message, "ssl") ||
         containsNoCase(message, "certificate");
}

/// gRPC's own detail of a failed connection without its framing: "failed to connect to all
/// addresses; last error: UNKNOWN: ipv4:127.0.0.1:5000: Peer name 127.0.0.1 is not in peer
/// certificate" is "Peer name 127.0.0.1 is not in peer certificate".
std::string_view grpcDetail(std::string_view message) {
  if (const auto at = message.rfind("last error: "); at != std::string_view::npos) {
    message.remove_prefix(at + 12);
  }
  // A status word ("UNKNOWN: ", "UNAVAILABLE: ").
  const auto word = message.find(": ");
  if (word != std::string_view::npos &&
      std::all_of(message.begin(), message.begin() + static_cast<std::ptrdiff_t>(word),
                  [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; })) {
    message.remove_prefix(word + 2);
  }
  // The address as a URI ("ipv4:127.0.0.1:5000: ", "ipv6:%5B::1%5D:5000: ").
  if (message.rfind("ipv4:", 0) == 0 || message.rfind("ipv6:", 0) == 0 ||
      message.rfind("unix:", 0) == 0) {
    if (const auto end = message.find(": "); end != std::string_view::npos) {
      message.remove_prefix(end + 2);
    }
  }
  return message;
}

/// What went wrong with the connection, from gRPC's transport text ("failed to connect to
/// all addresses; last error: UNKNOWN: ipv4:127.0.0.1:5000: Failed to connect to remote
/// host: Connection refused"), in the words people read in a state line.
std::string transportReason(std::string_view message) {
  struct Known {
    std::string_view needle;
    std::string_view says;
  };
  static constexpr Known kKnown[] = {
      {"connection refused", "connection refused"},
      {"connection reset", "connection reset"},
      {"no route to host", "no route to host"},
      {"network is unreachable", "network is unreachable"},
      {"keepalive", "no answer to keepalive pings"},
      {"socket closed", "connection closed"},
      {"broken pipe", "connection closed"},
      {"endpoint closing", "connection closed"},
      {"dns resolution failed", "cannot resolve the host"},
  };
  if (tlsFailure(message)) {
    // Keep gRPC's own detail: which check failed is what the operator needs.
    return "TLS handshake failed: " + std::string(grpcDetail(message));
  }
  for (const auto& k : kKnown) {
    if (containsNoCase(message, k.needle)) {
      return std::string(k.says);
    }
  }
  return std::string(grpcDetail(message));
}

bool readPem(const std::string& what, const std::string& path, std::string& out,
             std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read the " + what + " " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace

/// One WatchNodes call through gRPC's callback API. Its callbacks only record what
/// happened and wake the stream thread, which does everything else (so the sink is called
/// from that thread alone). A read is outstanding only while the thread is not looking at
/// `incoming`.
///
/// The thread starts each next read from outside a reaction, so the call holds itself open
/// (AddHold) until the thread says it reads no more (release()). Without the hold, the end
/// of the stream can arrive while no read is outstanding, run OnDone and free the call's
/// state in gRPC, and the thread's next StartRead then completes on freed memory (seen:
/// "assertion failed: pos < interceptors_.size()", about once in a hundred TLS runs).
class SourceStream::WatchCall final : public grpc::ClientReadReactor<v1::WatchNodesResponse> {
 public:
  WatchCall(std::mutex& mu, std::condition_variable& cv) : mu_(mu), cv_(cv) {}

  void start(v1::Registry::Stub& stub) {
    stub.async()->WatchNodes(&ctx, &request, this);
    AddHold();
    held_ = true;
    StartRead(&incoming);
    StartCall();
  }
  void readNext() { StartRead(&incoming); }
  /// The thread starts no more reads: OnDone may come once the outstanding ones ended.
  /// Called without the stream's mu_ (it may finish the call); once only.
  void release() {
    if (held_) {
      held_ = false;
      RemoveHold();
    }
  }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    ready = ok;
    failed = !ok;  // No more messages: the thread releases the call, then OnDone comes.
    cv_.notify_all();
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard<std::mutex> lock(mu_);
    status = s;
    done = true;
    cv_.notify_all();
  }

  grpc::ClientContext ctx;
  v1::WatchNodesRequest request;
  // Guarded by the stream's mu_.
  bool ready = false;   // `incoming` holds a message the thread has not taken.
  bool failed = false;  // A read failed: the stream ended or was cancelled.
  bool done = false;    // OnDone ran: gRPC is finished with this object.
  grpc::Status status;
  v1::WatchNodesResponse incoming;

 private:
  std::mutex& mu_;
  std::condition_variable& cv_;
  bool held_ = false;  // The stream thread's own.
};

SourceStream::SourceStream(SourceStreamOptions options, SourceSink& sink)
    : options_(std::move(options)), sink_(sink) {}

SourceStream::~SourceStream() {
  stop();
}

void SourceStream::start() {
  std::lock_guard<std::mutex> lock(start_mu_);
  if (thread_.joinable() || stopping()) {
    return;
  }
  thread_ = std::thread([this] { run(); });
}

void SourceStream::stop() {
  {
    std::lock_guard<std::mutex> lock(cancel_mu_);
    stopping_ = true;
    if (active_ != nullptr) {
      active_->TryCancel();  // A unary call returns CANCELLED; a watch runs OnDone.
    }
  }
  {
    // Taken so that a thread between testing stopping_ and waiting cannot miss the wake.
    std::lock_guard<std::mutex> lock(mu_);
  }
  cv_.notify_all();
  std::lock_guard<std::mutex> lock(start_mu_);
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool SourceStream::arm(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  if (stopping_) {
    return false;
  }
  active_ = ctx;
  return true;
}

void SourceStream::disarm() {
  std::lock_guard<std::mutex> lock(cancel_mu_);
  active_ = nullptr;
}

void SourceStream::run() {
  while (!stopping()) {
    const auto ending = connectOnce();
    if (!ending) {
      break;  // stop(): the relay no longer follows this source, nothing to report.
    }
    log::debug("fleet source down", {{"source", options_.address},
                                     {"error", ending->error},
                                     {"refused", ending->refused ? "true" : "false"}});
    sink_.onDown(ending->error, ending->refused);
    if (!pause(nextBackoff(*ending))) {
      break;
    }
  }
}

bool SourceStream::pause(milliseconds delay) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, delay, [this] { return stopping(); });
}

milliseconds SourceStream::nextBackoff(const Ending& ending) {
  if (ending.reached) {
    failures_ = 0;  // It worked until it broke: try again soon.
  }
  milliseconds delay = options_.backoff_max;
  if (!ending.refused && !ending.local) {
    // Doubling from backoff_min; the exponent is capped so the shift cannot overflow.
    delay = std::min(options_.backoff_max,
                     options_.backoff_min * (milliseconds::rep{1} << std::min(failures_, 20)));
    ++failures_;
  }
  // Jitter, so that sources restarting together (or a relay restarting) do not reconnect in
  // step: a quarter of the delay at random, never below backoff_min.
  thread_local std::minstd_rand random{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.75, 1.0);
  const auto jittered = milliseconds(static_cast<int64_t>(delay.count() * factor(random)));
  return std::max(std::min(options_.backoff_min, delay), jittered);
}

std::shared_ptr<grpc::Channel> SourceStream::makeChannel(std::string& error) const {
  const auto hp = parseHostPort(options_.address);
  if (!hp || hp->host.empty() || !hp->port) {
    error = "bad source address \"" + options_.address + "\": HOST:PORT expected";
    return nullptr;
  }
  grpc::ChannelArguments args;
  // A connection of its own (not shared through gRPC's global pool with other channels to
  // the same address), whose own reconnection follows our backoff, not gRPC's 1 s to 120 s.
  // gRPC's "minimum reconnect backoff" is really the time one connection attempt (TCP, TLS,
  // HTTP/2 settings) may take: the RPC timeout, never the short backoff.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(options_.backoff_min.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.rpc_timeout.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.backoff_max.count()));
  // Keepalive notices a peer that stopped answering (SIGSTOP, a dead host) even without a
  // watch. The daemon's server counts pings that come between its own data frames (gRPC's
  // ping strikes, 2 allowed) and closes the connection with too_many_pings past them: a ping
  // no more often than the progress messages keeps every ping after a data frame.
  const auto keepalive = std::max(options_.keepalive_time, options_.progress_interval);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(keepalive.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options_.keepalive_timeout.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // A watch client never sends data.
  std::shared_ptr<grpc::ChannelCredentials> creds;
  const SourceTls& tls = options_.tls;
  if (tls.enabled) {
    grpc::SslCredentialsOptions ssl;
    if (!tls.ca_file.empty() && !readPem("CA file", tls.ca_file, ssl.pem_root_certs, error)) {
      return nullptr;
    }
    if (tls.cert_file.empty() != tls.key_file.empty()) {
      error = "a client certificate and its key go together (--source-cert, --source-key)";
      return nullptr;
    }
    if (!tls.cert_file.empty() &&
        (!readPem("certificate", tls.cert_file, ssl.pem_cert_chain, error) ||
         !readPem("key", tls.key_file, ssl.pem_private_key, error))) {
      return nullptr;
    }
    if (!tls.server_name.empty()) {
      args.SetSslTargetNameOverride(tls.server_name);
    }
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(joinHostPort(hp->host, *hp->port), creds, args);
}

std::shared_ptr<grpc::Channel> SourceStream::adminChannel(std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!channel_) {
    channel_ = makeChannel(error);
  }
  return channel_;
}

void SourceStream::prepare(grpc::ClientContext& ctx, bool deadline) const {
  if (!options_.token.empty()) {
    ctx.AddMetadata("authorization", "Bearer " + options_.token);
  }
  if (deadline) {
    ctx.set_deadline(std::chrono::system_clock::now() + options_.rpc_timeout);
  }
}

void SourceStream::connectFailed(const grpc::Status& status, Ending& ending) const {
  const auto code = status.error_code();
  const std::string where = "connect " + options_.address + ": ";
  if (refusedCode(code)) {
    ending.error = describe(status);
    ending.refused = true;
  } else if (code == grpc::StatusCode::DEADLINE_EXCEEDED) {
    ending.error = where + "no answer in " + std::to_string(options_.rpc_timeout.count()) + " ms";
  } else if (code == grpc::StatusCode::UNAVAILABLE) {
    ending.error = where + transportReason(status.error_message());
    ending.refused = tlsFailure(status.error_message());
    if (options_.tls.enabled && containsNoCase(status.error_message(), "socket closed")) {
      // A TLS 1.3 server checks the client's certificate after the handshake has completed
      // on the client's side, and a refusal is only the connection closing before any
      // answer: a refusal of the relay, though gRPC cannot say so.
      ending.error += options_.tls.cert_file.empty()
                          ? " before answering (does it require a client certificate? "
                            "--source-cert, --source-key)"
                          : " before answering (does it trust the relay's certificate?)";
      ending.refused = true;
    }
  } else if (code == grpc::StatusCode::UNIMPLEMENTED) {
    ending.error = where + "no epmdx admin API there (" + describe(status) + ")";
  } else {
    ending.error = "ListClusters: " + describe(status);
  }
}

void SourceStream::watchEnded(const grpc::Status& status, bool resume, WatchEnd& end,
                              Ending& ending) {
  const auto code = status.error_code();
  if (code == grpc::StatusCode::OUT_OF_RANGE ||
      (resume && code == grpc::StatusCode::INVALID_ARGUMENT)) {
    // The resume point left the source's history (or was never in it: another daemon at the
    // address): the only way back is a whole list.
    log::info("fleet source: listing again",
              {{"source", options_.address}, {"why", describe(status)}});
    revision_.reset();
    ending.error = describe(status);
    end.list_again = true;
    return;
  }
  ending.refused = refusedCode(code);
  if (code == grpc::StatusCode::UNAVAILABLE && !containsNoCase(status.error_message(), "epmdx")) {
    // gRPC's transport words; the daemon's own UNAVAILABLE ("epmdx is shutting down") as is.
    ending.error = "watch " + options_.address + ": " + transportReason(status.error_message());
  } else if (status.ok()) {
    ending.error = "watch " + options_.address + ": the source ended the stream";
  } else {
    ending.error = "watch " + options_.address + ": " + describe(status);
  }
}

std::optional<SourceStream::Ending> SourceStream::connectOnce() {
  Ending ending;
  auto channel = makeChannel(ending.error);
  if (!channel) {
    ending.local = true;  // Our own configuration: retrying soon changes nothing.
    return ending;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    channel_ = channel;
  }
  auto stub = v1::Registry::NewStub(channel);

  v1::ListClustersResponse clusters;
  grpc::Status status;
  {
    grpc::ClientContext ctx;
    prepare(ctx, true);
    if (!arm(&ctx)) {
      return std::nullopt;
    }
    status = stub->ListClusters(&ctx, v1::ListClustersRequest(), &clusters);
    disarm();
  }
  if (stopping()) {
    return std::nullopt;
  }
  if (!status.ok()) {
    connectFailed(status, ending);
    return ending;
  }

  SourceIdentity identity;
  // What the relay names the source: its --instance-name if it has one, else its host.
  identity.host = clusters.instance().empty() ? clusters.host() : clusters.instance();
  identity.boot_epoch = clusters.boot_epoch();
  identity.clusters.assign(clusters.clusters().begin(), clusters.clusters().end());
  // A resume is only for the same run of the same daemon. A boot epoch of 0 (a source that
  // does not tell) cannot rule one out, and need not: a daemon's revisions start at its start
  // time, so a revision of an earlier run is older than the new run's history and the resume
  // ends with OUT_OF_RANGE, which lists again.
  if (identity.host != host_ || identity.boot_epoch != boot_epoch_) {
    revision_.reset();
  }
  host_ = identity.host;
  boot_epoch_ = identity.boot_epoch;
  sink_.onIdentity(identity);

  int relists = 0;
  for (;;) {
    const WatchEnd end = watchOnce(*stub, ending);
    if (stopping()) {
      return std::nullopt;
    }
    if (!end.list_again) {
      return ending;
    }
    relists = end.delivered ? 0 : relists + 1;
    if (relists >= kMaxRelists) {
      ending.error = "the source asked to be listed again " + std::to_string(relists) +
                     " times in a row: " + ending.error;
      return ending;
    }
  }
}

SourceStream::WatchEnd SourceStream::watchOnce(v1::Registry::Stub& stub, Ending& ending) {
  WatchEnd end;
  const bool resume = revision_.has_value();
  auto call = std::make_unique<WatchCall>(mu_, cv_);
  prepare(call->ctx, false);
  call->request.set_progress_interval_ms(static_cast<uint32_t>(options_.progress_interval.count()));
  if (resume) {
    call->request.set_after_revision(*revision_);
  } else {
    call->request.set_send_initial_state(true);
  }
  if (!arm(&call->ctx)) {
    return end;
  }
  call->start(stub);

  std::string why;  // Our own reason to end the call (silence, a broken protocol).
  const grpc::Status status = follow(*call, resume, end, why);
  disarm();
  call.reset();  // Safe: OnDone ran, and stop() can no longer reach the context.

  ending.reached = ending.reached || end.delivered;
  if (stopping()) {
    return end;
  }
  if (!why.empty()) {
    ending.error = why;
    return end;
  }
  watchEnded(status, resume, end, ending);
  return end;
}

grpc::Status SourceStream::follow(WatchCall& c, bool resume, WatchEnd& end, std::string& why) {
  WatchCall* call = &c;
  bool listing = !resume;
  std::vector<v1::Node> initial;
  bool cancelled = false;
  auto last = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const auto woken = [&] {
      return call->ready || call->done || (call->failed && !cancelled) ||
             (!cancelled && stopping());
    };
    if (cancelled) {
      cv_.wait(lock, woken);  // Released: OnDone is sure to follow.
    } else {
      cv_.wait_until(lock, last + options_.silence_timeout, woken);
    }
    if (call->ready) {
      call->ready = false;
      v1::WatchNodesResponse msg;
      msg.Swap(&call->incoming);
      lock.unlock();  // gRPC calls (StartRead, TryCancel) may run the callbacks inline.
      last = Clock::now();
      if (!cancelled && !stopping()) {
        if (deliver(msg, listing, initial, why)) {
          end.delivered = end.delivered || !listing;
          call->readNext();
        } else {
          cancelled = true;
          call->ctx.TryCancel();
          call->release();
        }
      }
      lock.lock();
      continue;
    }
    if (call->done) {
      break;
    }
    if (call->failed) {
      // The stream ended (or a cancel took): no more reads, OnDone brings the status.
      cancelled = true;
      lock.unlock();
      call->release();
      lock.lock();
      continue;
    }
    // stop(), or the source fell silent past the timeout: end the call.
    if (!stopping()) {
      why = "no message from the source in " + std::to_string(options_.silence_timeout.count()) +
            " ms (progress asked every " + std::to_string(options_.progress_interval.count()) +
            " ms): it stopped answering";
    }
    cancelled = true;
    lock.unlock();
    call->ctx.TryCancel();
    call->release();
    lock.lock();
  }
  return call->status;
}

bool SourceStream::deliver(v1::WatchNodesResponse& msg, bool& listing,
                           std::vector<v1::Node>& initial, std::string& error) {
  if (listing) {
    if (!msg.events().empty()) {
      error = "protocol: events before the initial state was complete";
      return false;
    }
    for (auto& n : *msg.mutable_initial_nodes()) {
      initial.push_back(std::move(n));
    }
    if (msg.initial_state_complete()) {
      listing = false;
      revision_ = msg.revision();
      sink_.onSnapshot(std::move(initial), msg.revision());
      initial.clear();
    }
    return true;
  }
  if (!msg.initial_nodes().empty() || msg.revision() < revision_.value_or(0)) {
    // Nothing in the protocol does this: list from scratch on the next connection.
    error = "protocol: " + (msg.initial_nodes().empty()
                                ? "revision went back from " + std::to_string(*revision_) + " to " +
                                      std::to_string(msg.revision())
                                : std::string("initial nodes on a resumed stream"));
    revision_.reset();
    return false;
  }
  std::vector<v1::NodeEvent> events;
  events.reserve(static_cast<size_t>(msg.events_size()));
  for (auto& e : *msg.mutable_events()) {
    if (revision_ && e.revision() <= *revision_) {
      continue;  // Already given: the sink gets every change once.
    }
    events.push_back(std::move(e));
  }
  revision_ = msg.revision();
  if (events.empty()) {
    sink_.onProgress(msg.revision());
  } else {
    sink_.onEvents(std::move(events), msg.revision());
  }
  return true;
}

namespace {

/// gRPC's words for an unreachable source made plain, the code kept (UNAVAILABLE).
grpc::Status plain(const grpc::Status& s, const std::string& address) {
  if (s.error_code() != grpc::StatusCode::UNAVAILABLE ||
      containsNoCase(s.error_message(), "epmdx")) {
    return s;
  }
  return {s.error_code(), "connect " + address + ": " + transportReason(s.error_message())};
}

}  // namespace

grpc::Status SourceStream::evict(const v1::EvictNodeRequest& request,
                                 v1::EvictNodeResponse* response) {
  std::string error;
  auto channel = adminChannel(error);
  if (!channel) {
    return {grpc::StatusCode::UNAVAILABLE, error};
  }
  grpc::ClientContext ctx;
  prepare(ctx, true);
  return plain(v1::Registry::NewStub(channel)->EvictNode(&ctx, request, response),
               options_.address);
}

grpc::Status SourceStream::liftHold(const v1::LiftHoldRequest& request,
                                    v1::LiftHoldResponse* response) {
  std::string error;
  auto channel = adminChannel(error);
  if (!channel) {
    return {grpc::StatusCode::UNAVAILABLE, error};
  }
  grpc::ClientContext ctx;
  prepare(ctx, true);
  return plain(v1::Registry::NewStub(channel)->LiftHold(&ctx, request, response), options_.address);
}

}  // namespace epmdx::fleet
