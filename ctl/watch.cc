#include "ctl/watch.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include "ctl/coverage.h"
#include "ctl/status.h"
#include "ctl/yaml.h"
#include "server/api/json.h"

namespace epmdx::ctl {
namespace {

/// " release_helper=rpc:demo" for a release's helper node, empty for any other node.
std::string helperSuffix(const v1::Node& n) {
  const auto tag = releaseHelperTag(n);
  return tag.empty() ? std::string() : " " + tag;
}

/// " source=pod-1" for a fleet relay's node (" stale" too when its source cannot be reached
/// now), empty for a daemon's own: the last fields of a line, so the earlier ones keep their
/// places for scripts.
std::string sourceSuffix(const v1::Node& n) {
  if (n.source().empty()) {
    return {};
  }
  return " source=" + n.source() + (n.stale() ? " stale" : "");
}

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a watch keeps re-reading an unchanged token file while the daemon refuses the
// token: a restarting daemon may accept connections a moment before its new token is in
// the file. A token that stays wrong longer than this ends the watch.
constexpr auto kAuthGrace = std::chrono::seconds(10);

std::string lower(std::string s) {
  for (auto& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string indent(const std::string& text, size_t by) {
  std::string out;
  const std::string pad(by, ' ');
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const size_t stop = end == std::string::npos ? text.size() : end + 1;
    out += pad + text.substr(start, stop - start);
    start = stop;
  }
  return out;
}

void note(const std::string& text) {
  std::fprintf(stderr, "epmdxctl: %s\n", text.c_str());
}

// `watch`'s own output: the line format scripts have parsed since the first version.
class EventPrinter : public WatchSink {
 public:
  explicit EventPrinter(WatchFormat format) : format_(format) {}

  void initial(const v1::WatchNodesResponse& message) override {
    for (const auto& n : message.initial_nodes()) {
      if (format_ == WatchFormat::Json) {
        emit("{\"initialNode\":" + api::toJson(n) + "}\n");
      } else if (format_ == WatchFormat::Yaml) {
        emit("---\ninitialNode:\n" + indent(toYaml(n), 2));
      } else {
        emit(std::to_string(message.revision()) + " existing " + n.name() +
             " port=" + std::to_string(n.port()) + " id=" + std::to_string(n.registration_id()) +
             " creation=" + std::to_string(n.creation()) + " peer=" + n.peer_address() +
             sourceSuffix(n) + "\n");
      }
    }
  }

  void event(const v1::NodeEvent& e) override {
    if (format_ == WatchFormat::Json) {
      emit(api::toJson(e) + "\n");
      return;
    }
    if (format_ == WatchFormat::Yaml) {
      emit("---\n" + toYaml(e));
      return;
    }
    const auto& n = e.node();
    if (e.has_hold()) {
      // HELD, HOLD_LIFTED, HOLD_EXPIRED: the name's reservation, not a registration.
      std::string extra;
      if (e.type() == v1::NodeEvent::HELD) {
        extra += " until=" + google::protobuf::util::TimeUtil::ToString(e.hold().expires_at());
      }
      if (!e.actor().empty()) {
        extra += " by=" + e.actor();
      }
      if (!e.detail().empty()) {
        extra += " detail=\"" + e.detail() + "\"";
      }
      emit(std::to_string(e.revision()) + " " + lower(v1::NodeEvent::Type_Name(e.type())) + " " +
           n.name() + " id=" + std::to_string(n.registration_id()) + extra +
           (n.source().empty() && !e.hold().source().empty() ? " source=" + e.hold().source()
                                                             : sourceSuffix(n)) +
           "\n");
      return;
    }
    if (e.type() == v1::NodeEvent::HEALTH_CHANGED) {
      const auto& h = n.health();
      emit(std::to_string(e.revision()) + " health_changed " + n.name() +
           " health=" + healthName(h) + " id=" + std::to_string(n.registration_id()) +
           (h.last_error().empty() || h.status() == v1::ALIVE
                ? std::string()
                : " error=\"" + h.last_error() + "\"") +
           sourceSuffix(n) + "\n");
      return;
    }
    if (e.type() == v1::NodeEvent::HOLDER_CHANGED) {
      // The node's full name: the host comes from the holder, so it may be new too.
      emit(std::to_string(e.revision()) + " holder_changed " + nodeName(n) +
           " holder=" + holderName(n.holder()) + " id=" + std::to_string(n.registration_id()) +
           sourceSuffix(n) + "\n");
      return;
    }
    if (e.type() == v1::NodeEvent::REGISTERED) {
      emit(std::to_string(e.revision()) + " registered " + n.name() +
           " port=" + std::to_string(n.port()) + " id=" + std::to_string(n.registration_id()) +
           " creation=" + std::to_string(n.creation()) + " peer=" + n.peer_address() +
           helperSuffix(n) + sourceSuffix(n) + "\n");
      return;
    }
    std::string extra = helperSuffix(n);
    if (!e.actor().empty()) {
      extra += " by=" + e.actor();
    }
    if (!e.detail().empty()) {
      extra += " detail=\"" + e.detail() + "\"";
    }
    emit(std::to_string(e.revision()) + " unregistered " + n.name() +
         " reason=" + lower(v1::UnregisterReason_Name(e.reason())) +
         " id=" + std::to_string(n.registration_id()) + extra + sourceSuffix(n) + "\n");
  }

  void resync(const std::string& why) override {
    if (format_ == WatchFormat::Text) {
      emit("resync: " + why + "\n");
    } else {
      note("resync: " + why);  // Keeps stdout a clean stream of JSON lines or documents.
    }
  }

 private:
  WatchFormat format_;
};

// A row of blanks as wide as the widest value each column may show once the list is
// printed: every event type's name, an unresponsive health with a two-digit count, a holder
// with a long command. Names, peers and clusters may still be longer.
std::vector<std::string> roomFor(const std::vector<std::string>& header) {
  size_t event = 0;
  for (int t = v1::NodeEvent::Type_MIN; t <= v1::NodeEvent::Type_MAX; ++t) {
    if (v1::NodeEvent::Type_IsValid(t)) {
      event = std::max(event, v1::NodeEvent::Type_Name(static_cast<v1::NodeEvent::Type>(t)).size());
    }
  }
  std::vector<std::string> room;
  for (const auto& column : header) {
    size_t width = 0;
    if (column == "EVENT") {
      width = event;  // HEALTH_CHANGED, HOLDER_CHANGED
    } else if (column == "NAME" || column == "CLUSTER" || column == "SOURCE") {
      width = 12;
    } else if (column == "TYPE") {
      width = std::string("type 255").size();
    } else if (column == "AGE") {
      width = std::string("119m").size();
    } else if (column == "HEALTH") {
      width = std::string("unresponsive(99)").size();
    }
    room.emplace_back(width, ' ');
  }
  return room;
}

// `list --watch`: the list, then what changes, in the list's format. Tables gain an EVENT
// column (EXISTING, REGISTERED, UNREGISTERED) so that a removal reads as one.
class ListPrinter : public WatchSink {
 public:
  explicit ListPrinter(const ListArgs& args) : args_(args) {}

  void printList(const v1::ListNodesResponse& list) {
    switch (args_.format) {
      case Format::Json:
        emit(api::toJson(list) + "\n");
        return;
      case Format::Yaml:
        emit((printed_ ? "---\n" : "") + toYaml(list));
        printed_ = true;
        return;
      case Format::Names:
        for (const auto* n : byName(list.nodes())) {
          emit(n->name() + "\n");
        }
        return;
      case Format::Table:
      case Format::Wide: {
        std::vector<std::vector<std::string>> rows;
        auto header = nodeHeader(wide(), args_.columns);
        header.insert(header.begin(), "EVENT");
        if (args_.headers && !printed_) {
          rows.push_back(header);
        }
        for (const auto* n : byName(list.nodes())) {
          rows.push_back(row("EXISTING", *n));
        }
        // Room for what later events print (the longest event word, a health with its
        // failure count, ...), so that their rows line up with these.
        renderRows({roomFor(header)}, &widths_);
        emit(renderRows(rows, &widths_));
        printed_ = true;
        return;
      }
    }
  }

  void initial(const v1::WatchNodesResponse& message) override {
    // After a resync: the fresh state, printed as a list once it is whole.
    for (const auto& n : message.initial_nodes()) {
      *pending_.add_nodes() = n;
    }
    if (message.initial_state_complete()) {
      pending_.set_revision(message.revision());
      printList(pending_);
      pending_.Clear();
    }
  }

  void event(const v1::NodeEvent& e) override {
    switch (args_.format) {
      case Format::Json:
        emit(api::toJson(e) + "\n");
        return;
      case Format::Yaml:
        emit("---\n" + toYaml(e));
        return;
      case Format::Names:
        emit(e.node().name() + "\n");  // As kubectl -o name -w: the name of what changed.
        return;
      case Format::Table:
      case Format::Wide:
        emit(renderRows({row(v1::NodeEvent::Type_Name(e.type()), e.node())}, &widths_));
        return;
    }
  }

  void resync(const std::string& why) override { note("resync: " + why + "; listing again"); }

 private:
  bool wide() const { return args_.format == Format::Wide; }

  std::vector<std::string> row(const std::string& what, const v1::Node& node) const {
    auto r = nodeRow(node, wide(), std::time(nullptr), wide(), args_.columns);
    r.insert(r.begin(), what);
    return r;
  }

  ListArgs args_;
  bool printed_ = false;
  std::vector<size_t> widths_;
  v1::ListNodesResponse pending_;
};

}  // namespace

int follow(Connection& conn, WatchStart start, WatchSink& sink) {
  std::optional<uint64_t> resume = start.after;
  bool want_initial = start.initial && !start.after;
  // The revision we hold came from the daemon, not the user (see WatchStart).
  bool progressed = start.after_from_daemon;
  auto backoff = milliseconds(100);
  // When the first of a row of UNAUTHENTICATED answers came (time_point{}: none).
  Clock::time_point refused_since{};
  CoverageNotes coverage(start.printed);
  for (;;) {
    v1::WatchNodesRequest req;
    req.set_cluster(conn.options().cluster);
    req.set_source(conn.options().source);
    if (want_initial) {
      req.set_send_initial_state(true);
    } else if (resume) {
      req.set_after_revision(*resume);
    }
    auto ctx = conn.context(false);
    auto stream = conn.registry().WatchNodes(ctx.get(), req);
    v1::WatchNodesResponse msg;
    while (stream->Read(&msg)) {
      backoff = milliseconds(100);
      refused_since = Clock::time_point{};
      if (msg.has_coverage()) {
        // A relay: its first message and each change of a source's state (stderr only).
        printNotes(coverage.update(msg.coverage()));
      }
      if (want_initial && (msg.initial_nodes_size() > 0 || msg.initial_state_complete())) {
        sink.initial(msg);
      }
      for (const auto& e : msg.events()) {
        sink.event(e);
      }
      resume = msg.revision();
      if (msg.initial_state_complete()) {
        want_initial = false;
      }
      progressed = true;  // Later revisions are the daemon's.
    }
    const auto status = stream->Finish();
    const auto code = status.error_code();
    if (code == grpc::StatusCode::OUT_OF_RANGE ||
        (code == grpc::StatusCode::INVALID_ARGUMENT && progressed)) {
      // Too old for the daemon's history, or (INVALID_ARGUMENT after we had progressed) ahead
      // of a daemon that restarted with a new history: list again.
      sink.resync(code == grpc::StatusCode::OUT_OF_RANGE
                      ? status.error_message()
                      : "the daemon restarted (" + status.error_message() + ")");
      want_initial = true;
      resume.reset();
      continue;
    }
    if (code == grpc::StatusCode::UNAUTHENTICATED && conn.tokens().fromFile()) {
      if (conn.tokens().reload()) {
        note("the daemon refused the token; read a new one from " + conn.tokens().path());
        continue;
      }
      const auto now = Clock::now();
      if (refused_since == Clock::time_point{}) {
        refused_since = now;
      }
      if (now - refused_since < kAuthGrace) {
        std::this_thread::sleep_for(milliseconds(200));  // Waiting for the file to change.
        continue;
      }
    }
    if (code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED ||
        code == grpc::StatusCode::INVALID_ARGUMENT) {
      return reportFailure(conn, status);
    }
    // Unavailable, shutting down, network: try again, resuming where we were.
    note("watch interrupted (" + describe(status) + "); reconnecting");
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(2000));
  }
}

int watchEvents(Connection& conn, WatchStart start, WatchFormat format) {
  EventPrinter printer(format);
  return follow(conn, start, printer);
}

int watchList(Connection& conn, const ListArgs& args, const v1::ListNodesResponse& listed) {
  ListPrinter printer(args);
  printer.printList(listed);
  return follow(conn, WatchStart{listed.revision(), false, true, listed.coverage()}, printer);
}

}  // namespace epmdx::ctl
