#include "server/common/endpoint_text.h"

namespace epmdx {

std::string formatEndpoint(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  std::string out;
  if (addr.is_v6()) {
    out.append("[").append(addr.to_string()).append("]");
  } else {
    out.append(addr.to_string());
  }
  out.append(":").append(std::to_string(ep.port()));
  return out;
}

}  // namespace epmdx
