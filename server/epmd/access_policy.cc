#include "server/epmd/access_policy.h"

namespace epmdx::epmd {
namespace {

asio::ip::address_v6 asV6(const asio::ip::address& a) {
  return a.is_v6() ? a.to_v6() : asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4());
}

bool isLoopback(const asio::ip::address& a) {
  if (a.is_v4()) {
    return a.to_v4().is_loopback();
  }
  const auto v6 = a.to_v6();
  return v6.is_loopback() ||
         (v6.is_v4_mapped() && asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback());
}

bool samePrefix(const asio::ip::address_v6& a, const asio::ip::address_v6& b, unsigned prefix) {
  const auto x = a.to_bytes();
  const auto y = b.to_bytes();
  unsigned i = 0;
  for (; prefix >= 8; prefix -= 8, ++i) {
    if (x[i] != y[i]) {
      return false;
    }
  }
  if (prefix == 0) {
    return true;
  }
  const auto mask = static_cast<uint8_t>(0xFF << (8 - prefix));
  return (x[i] & mask) == (y[i] & mask);
}

}  // namespace

Result<PeerRule, std::string> PeerRule::parse(std::string_view text) {
  PeerRule rule;
  if (text == "any") {
    return rule;
  }
  rule.any_ = false;
  if (text.empty()) {
    return makeErr(std::string("an empty rule (use any, loopback or CIDRs)"));
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    std::string item(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) {
      continue;
    }
    rule.text_.push_back(item);
    if (item == "loopback") {
      rule.loopback_ = true;
      continue;
    }
    if (item == "any") {
      return makeErr(std::string("\"any\" cannot be combined with other entries"));
    }
    const size_t slash = item.find('/');
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(item.substr(0, slash), ec);
    if (ec) {
      return makeErr("\"" + item + "\" is not an address or CIDR");
    }
    const unsigned max = address.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string::npos) {
      const std::string p = item.substr(slash + 1);
      if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(p) > max) {
        return makeErr("\"" + item + "\" has a bad prefix length");
      }
      prefix = static_cast<unsigned>(std::stoul(p));
    }
    rule.cidrs_.push_back({asV6(address), address.is_v4() ? prefix + 96 : prefix});
  }
  if (rule.text_.empty()) {
    return makeErr(std::string("an empty rule (use any, loopback or CIDRs)"));
  }
  return rule;
}

bool PeerRule::allows(const asio::ip::address& peer) const {
  if (any_ || (loopback_ && isLoopback(peer))) {
    return true;
  }
  const auto v6 = asV6(peer);
  for (const auto& c : cidrs_) {
    if (samePrefix(v6, c.base, c.prefix)) {
      return true;
    }
  }
  return false;
}

std::string PeerRule::toString() const {
  if (any_) {
    return "any";
  }
  std::string out;
  for (const auto& t : text_) {
    out += (out.empty() ? "" : ",") + t;
  }
  return out;
}

}  // namespace epmdx::epmd
