#include "server/api/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "server/api/token_file.h"
#include "server/common/log.h"
#include "server/common/syscall.h"
#include "server/common/utf8.h"

namespace epmdx::api {
namespace {

constexpr std::string_view kSpace = " \t\r\v\f";
// A tokens file is a few lines; the cap only keeps a wrong path (a device, a huge log)
// from being read whole.
constexpr size_t kMaxTokensFileSize = 1 << 20;

// Constant-time comparison: a token check must not leak how many bytes matched.
bool equalConstantTime(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::vector<std::string_view> splitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = line.find_first_not_of(kSpace);
  while (pos != std::string_view::npos) {
    const size_t end = line.find_first_of(kSpace, pos);
    fields.push_back(line.substr(pos, end == std::string_view::npos ? end : end - pos));
    pos = end == std::string_view::npos ? end : line.find_first_not_of(kSpace, end);
  }
  return fields;
}

// Only visible ASCII can travel in an HTTP header or gRPC metadata value.
bool sendableToken(std::string_view token) {
  for (const char c : token) {
    if (c < 0x21 || c > 0x7E) {
      return false;
    }
  }
  return true;
}

bool printableUtf8(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return false;
    }
  }
  return countUtf8Chars(reinterpret_cast<const uint8_t*>(s.data()), s.size()) >= 0;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

std::string octalMode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Readable by someone who is not this daemon: "other" can read, or a group the daemon is
// not in. A group of the daemon's own is how a root-owned file is shared with it (0640
// root:epmdx under systemd, 0440 with fsGroup on Kubernetes): no warning for that.
bool readableByOthers(const struct stat& st) {
  if ((st.st_mode & S_IROTH) != 0) {
    return true;
  }
  if ((st.st_mode & S_IRGRP) == 0 || st.st_gid == getegid()) {
    return false;
  }
  std::vector<gid_t> groups(static_cast<size_t>(std::max(getgroups(0, nullptr), 0)));
  const int n = getgroups(static_cast<int>(groups.size()), groups.data());
  for (int i = 0; i < n; ++i) {
    if (groups[static_cast<size_t>(i)] == st.st_gid) {
      return false;
    }
  }
  return true;
}

// Reads a tokens file whole. Symlinks are followed on purpose: the file is the operator's
// own configuration (a Kubernetes Secret volume is a chain of symlinks).
std::optional<std::string> readTokensFile(const std::string& path, std::string& text) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    return "cannot read tokens file " + path + ": " + std::strerror(errno);
  }
  struct stat st {};
  std::optional<std::string> error;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = "cannot read tokens file " + path + ": not a regular file";
  } else if (st.st_size > static_cast<off_t>(kMaxTokensFileSize)) {
    error = "cannot read tokens file " + path + ": larger than 1 MiB";
  } else {
    // Decided: warn, do not refuse. Kubernetes mounts Secrets 0644 unless told otherwise,
    // and refusing would take the admin API down for a deployment that is otherwise fine.
    if (readableByOthers(st)) {
      log::warn(
          "the tokens file is readable by group or others: chmod 600 it (or 640 with "
          "a group of the daemon's own)",
          {{"file", path}, {"mode", octalMode(st.st_mode)}, {"group", st.st_gid}});
    }
    text.resize(static_cast<size_t>(st.st_size) + 1);
    size_t got = 0;
    for (;;) {
      const ssize_t n = sys::readSome(fd, text.data() + got, text.size() - got);
      if (n < 0) {
        error = "cannot read tokens file " + path + ": " + std::strerror(errno);
        break;
      }
      got += static_cast<size_t>(n);
      if (n == 0 || got == text.size()) {
        break;
      }
    }
    text.resize(got);
    if (!error && got > kMaxTokensFileSize) {
      error = "cannot read tokens file " + path + ": larger than 1 MiB";
    }
  }
  close(fd);
  return error;
}

}  // namespace

std::optional<std::string> parseTokens(std::string_view text, TokenMap& out) {
  std::unordered_map<std::string_view, int> first_line;  // Token -> line, for duplicates.
  int lineno = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    const std::string where = "line " + std::to_string(lineno) + ": ";
    if (const size_t hash = line.find('#'); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<std::string_view> fields = splitFields(line);
    if (fields.empty()) {
      continue;
    }
    const std::string_view token = fields[0];
    if (!sendableToken(token)) {
      return where + "the token has a byte that no header can carry (visible ASCII only)";
    }
    if (auto [it, fresh] = first_line.emplace(token, lineno); !fresh) {
      return where + "the same token as line " + std::to_string(it->second);
    }
    Principal p;
    p.identity = "token-" + std::to_string(lineno);
    for (size_t i = 1; i < fields.size(); ++i) {
      const std::string_view f = fields[i];
      if (f == "read") {
        p.read = true;
      } else if (f == "evict") {
        p.evict = true;
      } else if (f.size() > 5 && f.substr(0, 5) == "name=") {
        if (!printableUtf8(f.substr(5))) {
          // It travels in events (Protobuf strings must be UTF-8) and logs.
          return where + "field " + std::to_string(i + 1) + " is not a printable UTF-8 name";
        }
        p.identity = std::string(f.substr(5));
      } else {
        // The field is not quoted: a token written in the wrong place would end up in logs.
        return where + "field " + std::to_string(i + 1) +
               " is not a scope (scopes: read, evict; name=IDENTITY)";
      }
    }
    if (!p.read && !p.evict) {
      return where + "a token needs a scope (read, evict)";
    }
    out[std::string(token)] = std::move(p);
  }
  return std::nullopt;
}

std::string_view bearerToken(std::string_view authorization) {
  constexpr std::string_view kWhite = " \t";
  constexpr std::string_view kScheme = "bearer";
  std::string_view v = authorization;
  const size_t first = v.find_first_not_of(kWhite);
  if (first == std::string_view::npos) {
    return {};
  }
  v = v.substr(first, v.find_last_not_of(kWhite) - first + 1);
  if (v.size() <= kScheme.size() || !equalsIgnoreCase(v.substr(0, kScheme.size()), kScheme)) {
    return {};
  }
  v.remove_prefix(kScheme.size());
  const size_t start = v.find_first_not_of(kWhite);
  if (start == 0 || start == std::string_view::npos) {
    return {};  // "Bearerx" is another scheme; "Bearer" alone carries nothing.
  }
  v.remove_prefix(start);
  if (v.find_first_of(kWhite) != std::string_view::npos) {
    return {};  // Two words are not one token.
  }
  return v;
}

std::optional<std::string> TokenStore::loadFile(const std::string& path) {
  tokens_file_ = path;
  return reload();
}

std::optional<std::string> TokenStore::reload() {
  if (tokens_file_.empty()) {
    return std::nullopt;  // A generated token is not reloaded.
  }
  std::string text;
  if (auto err = readTokensFile(tokens_file_, text)) {
    return err;
  }
  TokenMap m;
  if (auto err = parseTokens(text, m)) {
    return tokens_file_ + ": " + *err;
  }
  install(std::move(m));
  return std::nullopt;
}

void TokenStore::generate() {
  generated_token_ = randomToken();
  install(TokenMap{{generated_token_, Principal{"admin", true, true}}});
}

TokenStore::~TokenStore() {
  if (generated_file_lock_ >= 0) {
    close(generated_file_lock_);
  }
}

Result<TokenStore::Published, std::string> TokenStore::publishGenerated(const std::string& path) {
  generated_path_ = path;
  std::string why;
  int fd = -1;
  if (auto adopted = readAdoptableTokenFile(path, &why, &fd)) {
    if (!lockTokenFile(fd)) {
      close(fd);
      return makeErr("another epmdx holds the admin token file " + path +
                     " (two daemons with one --token-out?)");
    }
    generated_file_lock_ = fd;
    generated_token_ = std::move(*adopted);
    install(TokenMap{{generated_token_, Principal{"admin", true, true}}});
    return Published::Adopted;
  }
  if (struct stat st{}; lstat(path.c_str(), &st) == 0) {
    log::info("not adopting the existing admin token file", {{"file", path}, {"reason", why}});
  }
  if (auto err = writeTokenFile(path, generated_token_, {}, &fd)) {
    return makeErr(std::move(*err));
  }
  generated_file_lock_ = fd;
  return Published::Written;
}

TokenStore::Check TokenStore::check(std::string_view authorization, Scope scope,
                                    Principal* who) const {
  const std::string_view token = bearerToken(authorization);
  if (token.empty()) {
    return Check::Unauthenticated;
  }
  std::shared_ptr<const TokenMap> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens = tokens_;
  }
  if (!tokens) {
    return Check::Unauthenticated;
  }
  const Principal* found = nullptr;
  for (const auto& [t, p] : *tokens) {  // Few tokens: compare each in constant time.
    if (equalConstantTime(t, token)) {
      found = &p;
    }
  }
  if (found == nullptr) {
    return Check::Unauthenticated;
  }
  if (who != nullptr) {
    *who = *found;
  }
  const bool allowed = scope == Scope::Read ? found->read : found->evict;
  return allowed ? Check::Ok : Check::PermissionDenied;
}

void TokenStore::setForTest(const std::string& token, Principal principal) {
  install(TokenMap{{token, std::move(principal)}});
}

void TokenStore::setForTest(TokenMap tokens) {
  install(std::move(tokens));
}

void TokenStore::install(TokenMap tokens) {
  auto m = std::make_shared<const TokenMap>(std::move(tokens));
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(m);
}

}  // namespace epmdx::api
