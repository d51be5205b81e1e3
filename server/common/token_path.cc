#include "server/common/token_path.h"

#include <unistd.h>

namespace epmdx {

std::string tokenDirectory(GetenvFn getenv_fn) {
  if (const char* r = getenv_fn("XDG_RUNTIME_DIR"); r != nullptr && *r != '\0') {
    return std::string(r) + "/epmdx";
  }
  if (const char* h = getenv_fn("HOME"); h != nullptr && *h != '\0') {
    return std::string(h) + "/.config/epmdx";
  }
  return "/tmp/epmdx-" + std::to_string(getuid());
}

std::string tokenPathForPort(GetenvFn getenv_fn, uint16_t port) {
  return tokenDirectory(getenv_fn) + "/admin-" + std::to_string(port) + ".token";
}

}  // namespace epmdx
