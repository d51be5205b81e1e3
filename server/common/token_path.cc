#include "server/common/token_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <memory>

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

namespace {

/// admin-DIGITS.token, the name tokenPathForPort() gives.
bool generatedTokenName(const std::string& name) {
  const std::string prefix = "admin-", suffix = ".token";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  for (size_t i = prefix.size(); i < name.size() - suffix.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::string> removeStaleTokenFiles(const std::string& directory,
                                               const std::string& keep) {
  std::vector<std::string> removed;
  const int dfd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    return removed;
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(fdopendir(dfd), closedir);
  if (!dir) {
    close(dfd);
    return removed;
  }
  while (const dirent* e = readdir(dir.get())) {
    const std::string name = e->d_name;
    if (!generatedTokenName(name) || directory + "/" + name == keep) {
      continue;
    }
    const int fd = openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      continue;  // A symlink (ELOOP), gone, or not ours to read.
    }
    struct stat st {};
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
        flock(fd, LOCK_EX | LOCK_NB) == 0) {
      // Still the same file under that name (not replaced since we opened it)?
      struct stat now {};
      if (fstatat(dfd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == st.st_ino &&
          now.st_dev == st.st_dev && unlinkat(dfd, name.c_str(), 0) == 0) {
        removed.push_back(name);
      }
    }
    close(fd);  // Releases the lock.
  }
  return removed;
}

}  // namespace epmdx
