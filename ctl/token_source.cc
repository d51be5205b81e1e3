#include "ctl/token_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "ctl/server_target.h"
#include "server/common/syscall.h"

namespace epmdx::ctl {

TokenSource TokenSource::resolve(const std::string& flag_token, const std::string& flag_file,
                                 GetenvFn getenv_fn, const std::string& server) {
  TokenSource source;
  auto env = [getenv_fn](const char* name) -> std::string {
    const char* v = getenv_fn(name);
    return v == nullptr ? "" : v;
  };
  if (!flag_token.empty()) {
    source.token_ = flag_token;
  } else if (!flag_file.empty()) {
    source.path_ = flag_file;
    source.explicit_ = true;
  } else if (const std::string t = env("EPMDX_TOKEN"); !t.empty()) {
    source.token_ = t;
  } else if (const std::string f = env("EPMDX_TOKEN_FILE"); !f.empty()) {
    source.path_ = f;
    source.explicit_ = true;
  } else if (const auto port = targetPort(server)) {
    source.path_ = tokenPathForPort(getenv_fn, *port);
  } else {
    source.error_ = "no token: --server=" + server +
                    " has no port to find the daemon's token file by; pass --token-file";
  }
  return source;
}

bool TokenSource::load() {
  if (path_.empty()) {
    return !token_.empty();
  }
  auto fail = [this](const char* reason) {
    error_ = "cannot read token file " + path_ + ": " + reason;
    token_.clear();
    return false;
  };
  // open(2)/read(2) rather than a stream: the errno they leave is the reason the user needs
  // (ENOENT, EACCES, EISDIR).
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(std::strerror(errno));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = sys::readSome(fd, buf, sizeof buf);
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return fail(std::strerror(err));
    }
    if (n == 0 || text.size() > 65536) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  std::istringstream in(text);
  std::string token;
  in >> token;
  if (token.empty()) {
    error_ = "token file " + path_ + " is empty";
    token_.clear();
    return false;
  }
  error_.clear();
  token_ = token;
  return true;
}

bool TokenSource::reload() {
  if (path_.empty()) {
    return false;
  }
  const std::string before = token_;
  load();
  return !token_.empty() && token_ != before;
}

}  // namespace epmdx::ctl
