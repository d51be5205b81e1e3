#include "server/holder/cookie_redact.h"

#include <vector>

namespace epmdx::holder {
namespace {

bool isFlag(std::string_view arg) {
  return !arg.empty() && arg.front() == '-';
}

}  // namespace

std::string redactCookies(std::string_view argv) {
  const bool trailing_nul = !argv.empty() && argv.back() == '\0';
  if (trailing_nul) {
    argv.remove_suffix(1);
  }
  std::vector<std::string_view> args;
  for (size_t at = 0;;) {
    const size_t end = argv.find('\0', at);
    args.push_back(argv.substr(at, end == std::string_view::npos ? end : end - at));
    if (end == std::string_view::npos) {
      break;
    }
    at = end + 1;
  }

  std::vector<bool> secret(args.size(), false);
  constexpr std::string_view kCookieEq = "--cookie=";
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-setcookie") {
      size_t values = 0;
      while (i + 1 + values < args.size() && !isFlag(args[i + 1 + values])) {
        ++values;
      }
      // One value is the cookie; of two (NODE COOKIE) the node is no secret. init takes any
      // number (three leave the node with no cookie): which one was meant is unknown, so
      // none is shown.
      for (size_t v = values == 2 ? 1 : 0; v < values; ++v) {
        secret[i + 1 + v] = true;
      }
      i += values;
    } else if (args[i] == "--cookie" && i + 1 < args.size()) {
      secret[++i] = true;  // Elixir takes the next argument whatever it looks like.
    }
  }

  std::string out;
  out.reserve(argv.size() + 1);
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) {
      out.push_back('\0');
    }
    if (secret[i]) {
      out.append(kRedactedCookie);
    } else if (args[i].substr(0, kCookieEq.size()) == kCookieEq) {
      out.append(kCookieEq).append(kRedactedCookie);
    } else {
      out.append(args[i]);
    }
  }
  if (trailing_nul) {
    out.push_back('\0');
  }
  return out;
}

}  // namespace epmdx::holder
