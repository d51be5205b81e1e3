#include "server/common/release_helper.h"

namespace epmdx {

std::optional<ReleaseHelper> releaseHelper(std::string_view name) {
  // "rpc-" or "rem-", four lowercase hex digits (od -x), "-", then a non-empty node name.
  constexpr size_t kHead = 4 + 4 + 1;
  if (name.size() <= kHead || name[3] != '-' || name[8] != '-') {
    return std::nullopt;
  }
  const std::string_view kind = name.substr(0, 3);
  if (kind != "rpc" && kind != "rem") {
    return std::nullopt;
  }
  for (const char c : name.substr(4, 4)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return std::nullopt;
    }
  }
  return ReleaseHelper{kind == "rpc" ? "rpc" : "remote", std::string(name.substr(kHead))};
}

}  // namespace epmdx
