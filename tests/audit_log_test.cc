// The audit file (api::AuditLog) on a real Registry and a real file: one JSON line
// (epmdx.v1.AuditRecord) per administrative change with who did it, nothing for the other
// changes, and, when the writer fell behind the kept history, a "lost" line and the writing
// carried on from the oldest change kept. The writer runs on its own thread; the tests read
// the file until what they expect is there or a deadline passes.

#include "server/api/audit_log.h"
#include "tests/support/test_nodes.h"

#include <dirent.h>
#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "epmdx/v1/registry.pb.h"

namespace epmdx::api {
namespace {

using namespace std::chrono_literals;

class FakeClock final : public registry::Clock {
 public:
  int64_t nowNanos() const override { return nanos.load(); }
  uint32_t nowSeconds() const override { return static_cast<uint32_t>(nanos.load() / 1000000000); }
  std::atomic<int64_t> nanos{1'700'000'000'000'000'000};
};

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "epmdx-audit-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    unlink(path_.c_str());
  }
  void TearDown() override { unlink(path_.c_str()); }

  registry::RegistryOptions options(size_t history = 1024) {
    registry::RegistryOptions o;
    o.cluster_names = {"default", "blue"};
    o.history_size = history;
    o.clock = &clock_;
    return o;
  }

  static void add(registry::Registry& r, const std::string& name, registry::ClusterId cluster = 0) {
    registry::NodeInfo n = testNode(name, 4200);
    ASSERT_TRUE(r.add(n, registry::Origin{"127.0.0.1:7", -1, ""}, {}, cluster).ok()) << name;
  }

  /// @param name must outlive the request (a literal, or a string of the caller's).
  static registry::EvictRequest evictOf(std::string_view name) {
    return {.name = name,
            .cluster = 0,
            .expected_id = std::nullopt,
            .reason = registry::UnregisterReason::Evicted,
            .actor = "ops@127.0.0.1:5000",
            .detail = "stuck",
            .hold_for = std::nullopt};
  }

  static std::vector<v1::AuditRecord> parse(const std::string& text) {
    std::vector<v1::AuditRecord> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      v1::AuditRecord r;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &r).ok()) << line;
      out.push_back(r);
    }
    return out;
  }

  /// The file's records once `done` holds for them, or what there was at the deadline.
  std::vector<v1::AuditRecord> readUntil(
      const std::function<bool(const std::vector<v1::AuditRecord>&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::vector<v1::AuditRecord> records;
    do {
      std::ifstream in(path_);
      std::stringstream text;
      text << in.rdbuf();
      const std::string all = text.str();
      records = parse(all.substr(0, all.rfind('\n') + 1));  // Whole lines only.
      if (done(records)) {
        break;
      }
      std::this_thread::yield();
    } while (std::chrono::steady_clock::now() < deadline);
    return records;
  }

  FakeClock clock_;
  std::string path_;
};

TEST_F(AuditLogTest, OneLinePerAdministrativeChangeWithWhoAndWhy) {
  registry::Registry r(options());
  add(r, "before");
  ASSERT_TRUE(r.evict(evictOf("before")).ok());  // Before start(): not in the file.
  AuditLog audit(r);
  ASSERT_EQ(audit.start(path_), std::nullopt);

  add(r, "a");
  add(r, "b", 1);
  auto order = evictOf("a");
  order.hold_for = 1s;
  ASSERT_TRUE(r.evict(order).ok());
  ASSERT_TRUE(r.liftHold("a", 0, "ops@127.0.0.1:5001", "done").ok());
  order = evictOf("b");
  order.cluster = 1;
  order.reason = registry::UnregisterReason::AutoEvicted;
  order.actor = "auto-evict";
  order.hold_for = 1s;
  ASSERT_TRUE(r.evict(order).ok());
  clock_.nanos += 2'000'000'000;
  ASSERT_EQ(r.expireHolds().size(), 1u);

  const auto records = readUntil([](const auto& v) { return v.size() >= 6; });
  ASSERT_EQ(records.size(), 6u) << "registrations are no lines";
  const std::vector<std::string> actions = {"evict",      "hold", "lift",
                                            "auto_evict", "hold", "expire"};
  for (size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].action(), actions[i]) << i;
    if (i > 0) {
      EXPECT_GT(records[i].revision(), records[i - 1].revision()) << "in revision order";
    }
  }
  EXPECT_EQ(records[0].actor(), "ops@127.0.0.1:5000");
  EXPECT_EQ(records[0].reason(), "stuck");
  EXPECT_EQ(records[0].name(), "a");
  EXPECT_EQ(records[0].cluster(), "default");
  EXPECT_EQ(records[0].registration().name(), "a");
  EXPECT_EQ(records[1].hold().name(), "a");
  EXPECT_EQ(records[2].actor(), "ops@127.0.0.1:5001");
  EXPECT_EQ(records[2].reason(), "done");
  EXPECT_EQ(records[3].actor(), "auto-evict");
  EXPECT_EQ(records[3].cluster(), "blue");

  audit.stop();
  add(r, "c");
  ASSERT_TRUE(r.evict(evictOf("c")).ok());
  EXPECT_EQ(readUntil([](const auto&) { return true; }).size(), 6u) << "nothing after stop()";
}

TEST_F(AuditLogTest, StopWritesWhatIsPending) {
  registry::Registry r(options());
  AuditLog audit(r);
  ASSERT_EQ(audit.start(path_), std::nullopt);
  for (int i = 0; i < 50; ++i) {
    const std::string name = "n" + std::to_string(i);
    add(r, name);
    ASSERT_TRUE(r.evict(evictOf(name)).ok());
  }
  audit.stop();  // Returns after the writer drained: no polling needed.
  std::ifstream in(path_);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(parse(text.str()).size(), 50u);
}

TEST_F(AuditLogTest, AFileThatCannotBeOpenedIsAnError) {
  registry::Registry r(options());
  AuditLog audit(r);
  const auto error = audit.start("/nonexistent-dir/audit.log");
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->rfind("cannot open the audit file /nonexistent-dir/audit.log: ", 0), 0u)
      << *error;
}

/// Whether a thread of this process sleeps in write(2) (the audit writer on a full pipe).
bool aThreadSleepsInWrite() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) {
    return false;
  }
  bool found = false;
  while (dirent* task = readdir(dir)) {
    const std::string base = std::string("/proc/self/task/") + task->d_name;
    std::ifstream syscall_file(base + "/syscall");
    std::ifstream stat_file(base + "/stat");
    long nr = -1;
    std::string pid, comm, state;
    if ((syscall_file >> nr) && (stat_file >> pid >> comm >> state) && nr == SYS_write &&
        state == "S") {
      found = true;
    }
  }
  closedir(dir);
  return found;
}

TEST_F(AuditLogTest, FallingBehindIsALostLineThenTheOldestKeptOn) {
  // The file is a pipe, full before the writer's first line: the writer sleeps in write()
  // while the registry runs on far past its history of 16 changes, then falls behind.
  ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0);
  const int reader = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  const int filler = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  ASSERT_GE(filler, 0);
  const std::string spaces(4096, ' ');
  size_t filled = 0;
  for (ssize_t n; (n = ::write(filler, spaces.data(), spaces.size())) > 0;) {
    filled += static_cast<size_t>(n);
  }
  ::close(filler);

  constexpr int kNodes = 200;
  registry::Registry r(options(16));
  for (int i = 0; i < kNodes; ++i) {
    add(r, "n" + std::to_string(i));
  }
  AuditLog audit(r);
  ASSERT_EQ(audit.start(path_), std::nullopt);
  ASSERT_TRUE(r.evict(evictOf("n0")).ok());
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!aThreadSleepsInWrite() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_TRUE(aThreadSleepsInWrite()) << "the writer blocks on the full pipe";
  for (int i = 1; i < kNodes; ++i) {
    const std::string name = "n" + std::to_string(i);
    ASSERT_TRUE(r.evict(evictOf(name)).ok());
  }
  const registry::Revision last = r.revision();

  std::string text;
  std::vector<v1::AuditRecord> records;
  while (std::chrono::steady_clock::now() < deadline) {
    char buf[65536];
    const ssize_t n = ::read(reader, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
    } else if (text.size() > filled && text.back() == '\n') {
      records = parse(text.substr(filled));
      if (!records.empty() && records.back().revision() == last) {
        break;
      }
    }
  }
  ::close(reader);
  audit.stop();

  // The line in flight (n0's), the gap said, then the 16 changes the history still keeps.
  ASSERT_EQ(records.size(), 2u + 16u);
  EXPECT_EQ(records[0].action(), "evict");
  EXPECT_EQ(records[0].name(), "n0");
  const v1::AuditRecord& lost = records[1];
  EXPECT_EQ(lost.action(), "lost");
  EXPECT_EQ(lost.revision(), last - 15) << "the oldest change kept";
  EXPECT_EQ(lost.reason(), "changes before revision " + std::to_string(last - 15) +
                               " were not written: the audit writer fell behind the kept history");
  for (size_t i = 2; i < records.size(); ++i) {
    EXPECT_EQ(records[i].action(), "evict");
    EXPECT_EQ(records[i].revision(), last - 15 + (i - 2)) << "from the oldest kept on, no gap";
  }
  EXPECT_EQ(records.back().name(), "n" + std::to_string(kNodes - 1));
}

}  // namespace
}  // namespace epmdx::api
