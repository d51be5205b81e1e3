#include "server/api/token_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "server/common/syscall.h"

namespace epmdx::api {
namespace {

constexpr size_t kMinTokenSize = 32;
constexpr size_t kMaxTokenSize = 256;
constexpr int kTempAttempts = 16;

std::string errnoText() {
  return std::strerror(errno);
}

std::string octalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string randomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    const ssize_t n = sys::retryEintr([&] { return getrandom(raw.data() + got, bytes - got, 0); });
    if (n <= 0) {
      // No kernel randomness means no safe token: there is nothing sensible to fall back to.
      std::perror("getrandom");
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 0xF];
  }
  return out;
}

// Creates every missing directory of `dir` with mode 0700 (existing ones are left alone;
// only the last one is checked, by openOwnDirectory()).
bool makeDirectories(const std::string& dir) {
  for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
    const std::string part = dir.substr(0, pos);
    if (!part.empty() && mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return false;
    }
    if (pos == std::string::npos) {
      return true;
    }
  }
}

// Opens `dir` without following a symlink and checks that nobody but us (or root) can swap
// files in it: owned by our euid or by root, and writable by others only when sticky.
int openOwnDirectory(const std::string& dir, std::string& error) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    error = errno == ELOOP || errno == ENOTDIR
                ? "refusing the directory " + dir + ": it is a symlink or not a directory"
                : "cannot open the directory " + dir + ": " + errnoText();
    return -1;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    error = "cannot stat the directory " + dir + ": " + errnoText();
    close(fd);
    return -1;
  }
  const bool owner_ok = st.st_uid == geteuid() || st.st_uid == 0;
  const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (!owner_ok || (others_write && (st.st_mode & S_ISVTX) == 0)) {
    error = "refusing the directory " + dir + ": owned by uid " + std::to_string(st.st_uid) +
            ", mode " + octalMode(st.st_mode) + " (others could replace the token file)";
    close(fd);
    return -1;
  }
  return fd;
}

bool writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = sys::writeSome(fd, data.data(), data.size());
    if (n <= 0) {
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

bool wellFormedToken(std::string_view token) {
  if (token.size() < kMinTokenSize || token.size() > kMaxTokenSize) {
    return false;
  }
  // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
  size_t i = 0;
  for (; i < token.size(); ++i) {
    const char c = token[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::strchr("-._~+/", c) == nullptr) {
      break;
    }
  }
  if (i == 0) {
    return false;
  }
  for (; i < token.size(); ++i) {
    if (token[i] != '=') {
      return false;
    }
  }
  return true;
}

std::string randomToken() {
  return randomHex(32);
}

bool lockTokenFile(int fd) {
  return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

std::optional<std::string> readAdoptableTokenFile(const std::string& path, std::string* why,
                                                  int* fd_out) {
  auto no = [why](std::string reason) -> std::optional<std::string> {
    if (why != nullptr) {
      *why = std::move(reason);
    }
    return std::nullopt;
  };
  // O_NONBLOCK: a FIFO planted there must not hang the daemon; it is refused below anyway.
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    return no(errno == ELOOP ? "it is a symlink" : errnoText());
  }
  struct stat st {};
  std::string content;
  std::optional<std::string> reason;
  if (fstat(fd, &st) != 0) {
    reason = errnoText();
  } else if (!S_ISREG(st.st_mode)) {
    reason = "not a regular file";
  } else if (st.st_uid != geteuid()) {
    reason = "owned by uid " + std::to_string(st.st_uid) + ", not by us";
  } else if ((st.st_mode & 077) != 0) {
    reason = "mode " + octalMode(st.st_mode) + " gives group or others access";
  } else if (st.st_size > static_cast<off_t>(kMaxTokenSize + 1)) {
    reason = "too large for a token file";
  } else {
    content.resize(kMaxTokenSize + 2);
    const ssize_t n = read(fd, content.data(), content.size());
    if (n < 0) {
      reason = errnoText();
    } else {
      content.resize(static_cast<size_t>(n));
    }
  }
  std::string_view token = content;
  if (!token.empty() && token.back() == '\n') {
    token.remove_suffix(1);
  }
  if (!reason && !wellFormedToken(token)) {
    reason = "it does not hold one well-formed token";
  }
  if (reason || fd_out == nullptr) {
    close(fd);
  } else {
    *fd_out = fd;
  }
  if (reason) {
    return no(*reason);
  }
  return std::string(token);
}

std::optional<std::string> writeTokenFile(const std::string& path, std::string_view token,
                                          const TempNameFn& temp_name, int* locked_fd) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    return "cannot write a token to " + path + ": not a file name";
  }
  if (!makeDirectories(dir)) {
    return "cannot create the directory " + dir + ": " + errnoText();
  }
  std::string error;
  const int dfd = openOwnDirectory(dir, error);
  if (dfd < 0) {
    return error;
  }
  // Everything below is relative to the directory we checked, so renaming a path component
  // after the check changes nothing.
  auto fail = [dfd](std::string message) -> std::optional<std::string> {
    close(dfd);
    return message;
  };
  struct stat st {};
  if (fstatat(dfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
    return fail("refusing to replace " + path + ": it is a symlink or not a regular file");
  }
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < kTempAttempts && fd < 0; ++attempt) {
    tmp = temp_name ? temp_name() : "." + base + ".tmp-" + randomHex(8);
    fd = openat(dfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
      return fail("cannot create a temporary file in " + dir + ": " + errnoText());
    }
  }
  if (fd < 0) {
    return fail("cannot create a temporary file in " + dir + ": every name taken");
  }
  const std::string content = std::string(token) + "\n";
  // fchmod: the umask may have taken bits away from 0600 (the owner must be able to read).
  // Locked before it has its name, so no other daemon ever sees it unlocked.
  const bool written = fchmod(fd, 0600) == 0 && writeAll(fd, content) && fsync(fd) == 0 &&
                       (locked_fd == nullptr || lockTokenFile(fd));
  const std::string write_error = errnoText();
  if (!written) {
    close(fd);
    unlinkat(dfd, tmp.c_str(), 0);
    return fail("cannot write " + path + ": " + write_error);
  }
  auto failOpen = [&fail, fd](std::string message) {
    close(fd);
    return fail(std::move(message));
  };
  // rename() replaces a symlink itself, never its target; check again to refuse one that was
  // planted meanwhile rather than silently replace it.
  if (fstatat(dfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
    unlinkat(dfd, tmp.c_str(), 0);
    return failOpen("refusing to replace " + path + ": it is a symlink or not a regular file");
  }
  if (renameat(dfd, tmp.c_str(), dfd, base.c_str()) != 0) {
    const std::string rename_error = errnoText();
    unlinkat(dfd, tmp.c_str(), 0);
    return failOpen("cannot write " + path + ": " + rename_error);
  }
  fsync(dfd);  // The rename itself survives a crash.
  close(dfd);
  if (locked_fd != nullptr) {
    *locked_fd = fd;
  } else {
    close(fd);
  }
  return std::nullopt;
}

}  // namespace epmdx::api
