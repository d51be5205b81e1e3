#pragma once

// Real Erlang/OTP peers for tests: the environment an `erl` needs to use a given epmd port,
// and OTP's own `epmd -names` client polled until a name shows up or goes.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace epmdx::testing {

/// ERL_EPMD_PORT (and a HOME for the cookie file) for an `erl` that uses epmd on `port`.
std::map<std::string, std::string> erlEnv(uint16_t port);

/// Polls `epmd -port PORT -names` (OTP's client) until `needle` is present (or absent).
bool waitForNames(uint16_t port, const std::string& needle, bool present,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace epmdx::testing
