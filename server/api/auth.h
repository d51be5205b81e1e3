#pragma once

// Bearer tokens with scopes, shared by the gRPC and HTTP adapters.
//
// The tokens file has one token a line: `TOKEN SCOPE... [name=IDENTITY]`, scopes `read`
// (list, get, watch) and `evict`; `#` starts a comment. IDENTITY names the caller in events
// and logs (default "token-LINE"); the token itself is never logged. Without a tokens file,
// a random admin token (both scopes) is generated at start and written, mode 0600, where
// epmdxctl looks for it. Thread-safe; reload() swaps the set atomically (SIGHUP).

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace epmdx::api {

enum class Scope { Read, Evict };

struct Principal {
  std::string identity;
  bool read = false;
  bool evict = false;
};

class TokenStore {
 public:
  /// Loads `tokens_file`, or generates an admin token and writes it to `generated_path`.
  /// @return an error message on failure.
  std::optional<std::string> init(const std::string& tokens_file,
                                  const std::string& generated_path);
  /// Re-reads the tokens file; on error the old tokens stay. @return an error message.
  std::optional<std::string> reload();

  enum class Check { Ok, Unauthenticated, PermissionDenied };
  /// Checks an `authorization` header value ("Bearer TOKEN").
  Check check(std::string_view authorization, Scope scope, Principal* who = nullptr) const;

  /// A store with one token, for tests.
  void setForTest(const std::string& token, Principal principal);
  const std::string& generatedPath() const { return generated_path_; }

 private:
  using Map = std::unordered_map<std::string, Principal>;
  static std::optional<std::string> parse(const std::string& path, Map& out);

  std::string tokens_file_;
  std::string generated_path_;
  mutable std::mutex mu_;
  std::shared_ptr<const Map> tokens_;  // Guarded by mu_ (the map itself is immutable).
};

/// Reads the first line of a token file (what epmdxctl does). Empty if unreadable.
std::string readTokenFile(const std::string& path);

}  // namespace epmdx::api
