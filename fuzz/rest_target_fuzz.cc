// The REST request-target parser (server/http/target.h) on arbitrary targets, against an
// independent model of the same rules: origin-form only, the path kept encoded up to the
// first '?', the query split on '&' and the first '=', strict %XX escapes, '+' a space in
// the query, empty pairs skipped, the first value of a repeated key kept. The input is also
// tried as a decimal number (revisions, registration ids).
//
// Invariants: the parser and the model agree on acceptance and on every field; decoded text
// re-encodes and decodes back to itself; nothing decoded is longer than the input.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/http/target.h"

namespace {

using epmdx::http::parseNumber;
using epmdx::http::parseTarget;
using epmdx::http::percentDecode;

std::optional<std::string> modelDecode(std::string_view s) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else {
      if (s.size() - i < 3) {
        return std::nullopt;
      }
      int v = 0;
      for (size_t k = 1; k <= 2; ++k) {
        const char c = static_cast<char>(s[i + k] | 0x20);  // Lower case for letters.
        const size_t d = kHex.find(c);
        const bool digit = s[i + k] >= '0' && s[i + k] <= '9';
        const bool letter =
            (s[i + k] >= 'a' && s[i + k] <= 'f') || (s[i + k] >= 'A' && s[i + k] <= 'F');
        if (d == std::string_view::npos || !(digit || letter)) {
          return std::nullopt;
        }
        v = v * 16 + static_cast<int>(d);
      }
      out += static_cast<char>(v);
      i += 2;
    }
  }
  return out;
}

std::string encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

struct Model {
  std::string path;
  std::map<std::string, std::string> query;
};

std::optional<Model> model(std::string_view t) {
  if (t.empty() || t[0] != '/') {
    return std::nullopt;
  }
  Model m;
  const size_t q = t.find('?');
  m.path = std::string(t.substr(0, q));
  if (q == std::string_view::npos) {
    return m;
  }
  size_t start = q + 1;
  while (start <= t.size()) {
    size_t end = t.find('&', start);
    if (end == std::string_view::npos) {
      end = t.size();
    }
    const std::string_view pair = t.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) {
      continue;
    }
    const size_t eq = pair.find('=');
    const auto key = modelDecode(pair.substr(0, eq));
    const auto value =
        modelDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) {
      return std::nullopt;
    }
    if (m.query.count(*key) == 0) {
      m.query[*key] = *value;
    }
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const auto parsed = parseTarget(in);
  const auto expected = model(in);
  FUZZ_CHECK(parsed.has_value() == expected.has_value());
  if (parsed) {
    FUZZ_CHECK(parsed->path == expected->path);
    FUZZ_CHECK(parsed->query == expected->query);
    FUZZ_CHECK(parsed->path.size() <= in.size() && parsed->path.find('?') == std::string::npos);
    // The query written back out canonically parses to the same map.
    std::string again = parsed->path + "?";
    for (const auto& [k, v] : parsed->query) {
      FUZZ_CHECK(k.size() + v.size() <= in.size());
      again += encode(k) + "=" + encode(v) + "&";
    }
    const auto reparsed = parseTarget(again);
    FUZZ_CHECK(reparsed && reparsed->path == parsed->path && reparsed->query == parsed->query);
  }

  for (const bool plus : {true, false}) {
    const auto decoded = percentDecode(in, plus);
    const auto modelled = modelDecode(in);
    FUZZ_CHECK(decoded.has_value() == modelled.has_value());
    if (decoded) {
      FUZZ_CHECK(decoded->size() <= in.size());
      FUZZ_CHECK(percentDecode(encode(*decoded), plus) == decoded);
      if (plus) {
        FUZZ_CHECK(decoded == modelled);
      }
    }
  }

  const auto number = parseNumber(in);
  const bool digits = !in.empty() && in.size() <= 19 &&
                      in.find_first_not_of("0123456789") == std::string_view::npos;
  FUZZ_CHECK(number.has_value() == digits);
  if (number) {
    const std::string text = std::to_string(*number);
    const size_t nonzero = in.find_first_not_of('0');
    FUZZ_CHECK(text == (nonzero == std::string_view::npos ? "0" : in.substr(nonzero)));
  }
  return 0;
}
