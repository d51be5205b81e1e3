#include "server/app/admin_servers.h"

namespace epmdx::app {

struct AdminServers::Impl {};
AdminServers::AdminServers(App&) : impl_(std::make_unique<Impl>()) {}
AdminServers::~AdminServers() = default;
std::optional<std::string> AdminServers::start() {
  return std::nullopt;
}
void AdminServers::beginDrain() {}
void AdminServers::stop() {}
void AdminServers::reloadTokens() {}
uint16_t AdminServers::grpcPort() const {
  return 0;
}
uint16_t AdminServers::httpPort() const {
  return 0;
}

}  // namespace epmdx::app
