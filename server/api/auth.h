#pragma once

// Bearer tokens with scopes, shared by the gRPC and HTTP adapters.
//
// The tokens file has one token a line: `TOKEN SCOPE... [name=IDENTITY]`, scopes `read`
// (list, get, watch) and `evict`; `#` starts a comment. IDENTITY names the caller in events
// and logs (default "token-LINE"). A token is a secret: no log line and no error message
// ever carries one, nor any other text of a tokens file (a broken line may hold a token).
// Without a tokens file, a random admin token (both scopes) is generated and published in a
// per-daemon file (see token_file.h), or adopted from it after a restart. Thread-safe;
// reload() swaps the set atomically (SIGHUP).

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/common/result.h"

namespace epmdx::api {

enum class Scope { Read, Evict };

struct Principal {
  std::string identity;
  bool read = false;
  bool evict = false;

  bool operator==(const Principal&) const = default;
};

using TokenMap = std::unordered_map<std::string, Principal>;

/// Parses the text of a tokens file into `out`. @return on error "line N: what is wrong",
/// naming fields by position only, never quoting the file.
std::optional<std::string> parseTokens(std::string_view text, TokenMap& out);

/// The token of an `authorization` value: the scheme `Bearer` in any letter case, then one
/// or more spaces or tabs, then one token (surrounding spaces are ignored). Empty if the
/// value is not a bearer credential.
std::string_view bearerToken(std::string_view authorization);

class TokenStore {
 public:
  TokenStore() = default;
  ~TokenStore();
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  /// Loads a tokens file, which reload() reads again. Warns (does not refuse) when group or
  /// others can read it. @return an error message on failure.
  std::optional<std::string> loadFile(const std::string& path);
  /// Re-reads the tokens file; on error the old tokens stay. @return an error message.
  std::optional<std::string> reload();

  /// Makes a random admin token (both scopes), in memory until publishGenerated().
  void generate();
  enum class Published { Written, Adopted };
  /// Adopts the admin token already in `path` when that file is safe to adopt (see
  /// readAdoptableTokenFile), so clients holding it keep working across restarts; otherwise
  /// writes the generated token there. The file stays locked while this store lives: another
  /// daemon publishing to the same file gets an error. @pre generate() was called.
  Result<Published, std::string> publishGenerated(const std::string& path);
  const std::string& generatedPath() const { return generated_path_; }

  enum class Check { Ok, Unauthenticated, PermissionDenied };
  /// Checks an `authorization` header value ("Bearer TOKEN").
  Check check(std::string_view authorization, Scope scope, Principal* who = nullptr) const;

  /// A store with the given tokens, for tests.
  void setForTest(const std::string& token, Principal principal);
  void setForTest(TokenMap tokens);

 private:
  void install(TokenMap tokens);

  std::string tokens_file_;
  std::string generated_token_;
  std::string generated_path_;
  int generated_file_lock_ = -1;  // The token file, open and flock()ed.
  mutable std::mutex mu_;
  std::shared_ptr<const TokenMap> tokens_;  // Guarded by mu_ (the map itself is immutable).
};

}  // namespace epmdx::api
