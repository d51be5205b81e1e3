#pragma once

// Where epmdxctl's bearer token comes from, and reading it again when the daemon says the
// token is unknown (a restarted daemon generates a new one into the same file).
//
// Precedence: --token, --token-file, EPMDX_TOKEN, EPMDX_TOKEN_FILE, then the file the daemon
// on --server's port writes its generated token to (tokenPathForPort, server/common).

#include <cstdint>
#include <optional>
#include <string>

#include "server/common/token_path.h"

namespace epmdx::ctl {

class TokenSource {
 public:
  /// Chooses the source by the precedence above. `flag_token`/`flag_file` are empty when
  /// not given.
  static TokenSource resolve(const std::string& flag_token, const std::string& flag_file,
                             GetenvFn getenv_fn, const std::string& server);

  /// Reads the file, if the token comes from one. False when it cannot be read: error()
  /// then names the path and the reason.
  bool load();
  /// Reads the file again. True when it now holds a different token than before.
  bool reload();

  const std::string& token() const { return token_; }
  bool fromFile() const { return !path_.empty(); }
  /// The user named the file (flag or environment) rather than it being the default.
  bool explicitFile() const { return explicit_; }
  const std::string& path() const { return path_; }
  /// Why there is no token ("cannot read token file P: No such file or directory").
  const std::string& error() const { return error_; }

 private:
  std::string token_;
  std::string path_;
  bool explicit_ = false;
  std::string error_;
};

}  // namespace epmdx::ctl
