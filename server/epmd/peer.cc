#include "server/epmd/peer.h"

namespace epmdx::epmd {

bool isLocalPeer(const tcp::endpoint& remote,
                 const std::function<std::optional<tcp::endpoint>()>& local) {
  const auto addr = remote.address();
  if (addr.is_v4()) {
    if ((addr.to_v4().to_uint() & 0xFF000000U) == 0x7F000000U) {
      return true;
    }
  } else {
    const auto v6 = addr.to_v6();
    if (v6.is_loopback()) {
      return true;
    }
    if (v6.is_v4_mapped() && (asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_uint() &
                              0xFF000000U) == 0x7F000000U) {
      return true;
    }
  }
  const auto own = local();
  return own && addr == own->address();
}

}  // namespace epmdx::epmd
