#pragma once

// The request target of an HTTP request, split and decoded: no I/O, no allocation beyond
// the result, fuzzable. Percent-escapes must be well formed (two hex digits); a path is
// never decoded before it is split, so "%2F" inside a node name stays part of the name.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace epmdx::http {

struct Target {
  std::string path;                          // Still percent-encoded.
  std::map<std::string, std::string> query;  // Decoded keys and values ('+' is a space).
};

/// Splits "PATH?QUERY". nullopt when the target is not origin-form ("/..."), or a query
/// escape is malformed. A repeated query key keeps its first value.
std::optional<Target> parseTarget(std::string_view target);

/// Decodes %XX escapes (and '+' as a space when `plus_is_space`). nullopt if malformed.
std::optional<std::string> percentDecode(std::string_view s, bool plus_is_space);

/// A decimal number of at most 19 digits (a revision, a registration id, milliseconds).
std::optional<uint64_t> parseNumber(std::string_view s);

}  // namespace epmdx::http
