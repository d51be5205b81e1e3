#include "tests/support/fleet_relay.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tests/support/net.h"

namespace epmdx::testing {
namespace {

int counter = 0;

}  // namespace

std::string fleetBinary() {
  const char* env = std::getenv("EPMDX_FLEET_BIN");
  return env != nullptr && *env != '\0' ? env : EPMDX_FLEET_BIN_PATH;
}

FleetRelay::FleetRelay(std::vector<std::string> extra, std::string source_token)
    : grpc_(freePort()), http_(freePort()) {
  const std::string base =
      "/tmp/epmdx-fleet-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
  tokens_path_ = base + ".tokens";
  std::ofstream(tokens_path_) << kAdminToken << " read evict name=fleet-admin\n"
                              << kReaderToken << " read name=fleet-reader\n";
  argv_ = {fleetBinary(), "--grpc-listen=127.0.0.1:" + std::to_string(grpc_),
           "--http-listen=127.0.0.1:" + std::to_string(http_), "--tokens-file=" + tokens_path_};
  if (!source_token.empty()) {
    source_token_path_ = base + ".source-token";
    std::ofstream(source_token_path_) << source_token << "\n";
    argv_.push_back("--source-token-file=" + source_token_path_);
  }
  argv_.insert(argv_.end(), extra.begin(), extra.end());
  start();
}

FleetRelay::~FleetRelay() {
  process_.reset();
  unlink(tokens_path_.c_str());
  if (!source_token_path_.empty()) {
    unlink(source_token_path_.c_str());
  }
}

void FleetRelay::start() {
  process_ = std::make_unique<Process>(argv_);
}

bool FleetRelay::ready(std::chrono::milliseconds timeout) {
  return waitForPort(grpc_, timeout) && waitForPort(http_, timeout);
}

void FleetRelay::restart() {
  process_->signal(SIGKILL);
  process_->wait(std::chrono::seconds(5));
  start();
}

}  // namespace epmdx::testing
