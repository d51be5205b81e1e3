#include "server/api/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace epmdx::api {
namespace {

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

std::string randomToken() {
  std::random_device rd;  // /dev/urandom on Linux.
  static const char* hex = "0123456789abcdef";
  std::string t;
  for (int i = 0; i < 32; ++i) {
    const unsigned v = rd() & 0xFF;
    t += hex[v >> 4];
    t += hex[v & 0xF];
  }
  return t;
}

bool makeParentDirs(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    const std::string dir = path.substr(0, pos);
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> TokenStore::parse(const std::string& path, Map& out) {
  std::ifstream in(path);
  if (!in) {
    return "cannot read tokens file " + path + ": " + std::strerror(errno);
  }
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (auto hash = line.find('#'); hash != std::string::npos) {
      line.resize(hash);
    }
    std::istringstream fields(line);
    std::string token;
    if (!(fields >> token)) {
      continue;
    }
    Principal p;
    p.identity = "token-" + std::to_string(lineno);
    std::string f;
    while (fields >> f) {
      if (f == "read") {
        p.read = true;
      } else if (f == "evict") {
        p.evict = true;
      } else if (f.rfind("name=", 0) == 0 && f.size() > 5) {
        p.identity = f.substr(5);
      } else {
        return path + ":" + std::to_string(lineno) + ": unknown scope \"" + f +
               "\" (scopes: read, evict; name=IDENTITY)";
      }
    }
    if (!p.read && !p.evict) {
      return path + ":" + std::to_string(lineno) + ": a token needs a scope (read, evict)";
    }
    out[token] = p;
  }
  return std::nullopt;
}

std::optional<std::string> TokenStore::init(const std::string& tokens_file,
                                            const std::string& generated_path) {
  tokens_file_ = tokens_file;
  if (!tokens_file.empty()) {
    return reload();
  }
  generated_path_ = generated_path;
  const std::string token = randomToken();
  if (!makeParentDirs(generated_path)) {
    return "cannot create the directory of " + generated_path + ": " + std::strerror(errno);
  }
  // Written to a temporary file created 0600, then renamed: never readable by others.
  const std::string tmp = generated_path + ".tmp";
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return "cannot write " + tmp + ": " + std::strerror(errno);
  }
  fchmod(fd, 0600);
  const std::string content = token + "\n";
  const bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), generated_path.c_str()) != 0) {
    return "cannot write " + generated_path + ": " + std::strerror(errno);
  }
  auto m = std::make_shared<Map>();
  (*m)[token] = Principal{"admin", true, true};
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(m);
  return std::nullopt;
}

std::optional<std::string> TokenStore::reload() {
  if (tokens_file_.empty()) {
    return std::nullopt;  // A generated token is not reloaded.
  }
  auto m = std::make_shared<Map>();
  if (auto err = parse(tokens_file_, *m)) {
    return err;
  }
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(m);
  return std::nullopt;
}

TokenStore::Check TokenStore::check(std::string_view authorization, Scope scope,
                                    Principal* who) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() ||
      authorization.substr(0, kBearer.size()) != kBearer) {
    return Check::Unauthenticated;
  }
  const std::string_view token = authorization.substr(kBearer.size());
  std::shared_ptr<const Map> tokens;
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
  auto m = std::make_shared<Map>();
  (*m)[token] = std::move(principal);
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(m);
}

std::string readTokenFile(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  in >> token;
  return token;
}

}  // namespace epmdx::api
