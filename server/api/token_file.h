#pragma once

// The file that holds a daemon's generated admin token: written so that nobody else can read
// it or make us write somewhere else, and adopted again after a restart so that clients that
// read it stay authorised.
//
// Writing never follows a symlink: the directory is opened with O_NOFOLLOW and must be ours
// (or root's, and then sticky if others may write to it, as /tmp); the token goes into a new
// temporary file created there with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, under a random
// name, is fsynced, and is renamed over the target, which must not be a symlink. A symlink
// planted at the temporary name or at the target is never written through.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace epmdx::api {

/// What a generated token looks like and what an adopted one must look like: 32 to 256
/// characters of RFC 6750's b64token set (letters, digits, -._~+/ and trailing =).
bool wellFormedToken(std::string_view token);

/// 64 hexadecimal characters (256 bits) from the kernel's random source.
std::string randomToken();

/// The token in `path` if the file is safe to adopt: a regular file (a symlink is not
/// followed), owned by our effective uid, without any group or other permission bit, holding
/// one well-formed token and an optional newline. Otherwise std::nullopt, and `why` (if not
/// null) says why in words that never include the file's content. With `fd`, an adopted
/// file is left open there (for lockTokenFile).
std::optional<std::string> readAdoptableTokenFile(const std::string& path, std::string* why,
                                                  int* fd = nullptr);

/// Names the temporary file on each attempt; tests inject names to plant symlinks there.
using TempNameFn = std::function<std::string()>;

/// Writes `token` and a newline to `path` as described above, creating missing directories
/// with mode 0700. With `locked_fd`, the new file is locked (lockTokenFile) before it is
/// renamed into place and left open there. @return an error message (without the token).
std::optional<std::string> writeTokenFile(const std::string& path, std::string_view token,
                                          const TempNameFn& temp_name = {},
                                          int* locked_fd = nullptr);

/// Takes an exclusive, non-blocking flock() on an open token file. A daemon holds it for its
/// lifetime, so a second daemon that would share the file (the same --token-out) fails
/// loudly instead. @return false if another holds it.
bool lockTokenFile(int fd);

}  // namespace epmdx::api
