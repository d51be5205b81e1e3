// The tokens-file parser and the bearer-credential parser (server/api/auth.h) on arbitrary
// text. The input is parsed both as a tokens file and as an Authorization header value.
//
// Invariants: an error names a line and a field by number and never quotes the file (a bad
// line may hold a token); every accepted token is visible ASCII, has a scope, and opens a
// store exactly for its scopes under any letter case of "Bearer"; the parsed set written
// back out in canonical form parses to the same set; a bearer token is one word of the
// header, after a case-insensitive "Bearer" and whitespace.

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/api/auth.h"
#include "server/common/utf8.h"

namespace {

using namespace epmdx::api;

bool isDigits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// "line N: " then one of the parser's fixed messages: nothing of the input can appear.
bool fixedErrorMessage(std::string_view m) {
  constexpr std::string_view kLine = "line ";
  if (m.substr(0, kLine.size()) != kLine) {
    return false;
  }
  m.remove_prefix(kLine.size());
  const size_t colon = m.find(": ");
  if (colon == std::string_view::npos || !isDigits(m.substr(0, colon))) {
    return false;
  }
  m.remove_prefix(colon + 2);
  constexpr std::string_view kField = "field ";
  for (const std::string_view tail :
       {std::string_view(" is not a scope (scopes: read, evict; name=IDENTITY)"),
        std::string_view(" is not a printable UTF-8 name")}) {
    if (m.substr(0, kField.size()) == kField && m.size() > kField.size() + tail.size() &&
        m.substr(m.size() - tail.size()) == tail) {
      return isDigits(m.substr(kField.size(), m.size() - kField.size() - tail.size()));
    }
  }
  if (m == "a token needs a scope (read, evict)" ||
      m == "the token has a byte that no header can carry (visible ASCII only)") {
    return true;
  }
  constexpr std::string_view kSame = "the same token as line ";
  if (m.substr(0, kSame.size()) == kSame) {
    return isDigits(m.substr(kSame.size()));
  }
  return false;
}

// Checked independently of the parser: no control byte, and UTF-8 that decodes.
bool printableUtf8(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      return false;
    }
  }
  return epmdx::countUtf8Chars(reinterpret_cast<const uint8_t*>(s.data()), s.size()) >= 0;
}

bool visibleAscii(std::string_view s) {
  for (const char c : s) {
    if (c < 0x21 || c > 0x7E) {
      return false;
    }
  }
  return true;
}

void checkTokensFile(std::string_view text) {
  TokenMap tokens;
  if (auto err = parseTokens(text, tokens)) {
    FUZZ_CHECK(fixedErrorMessage(*err));
    return;
  }
  std::string canonical;
  for (const auto& [token, p] : tokens) {
    FUZZ_CHECK(!token.empty() && visibleAscii(token) && token.find('#') == std::string::npos);
    FUZZ_CHECK(text.find(token) != std::string_view::npos);
    FUZZ_CHECK(p.read || p.evict);
    FUZZ_CHECK(!p.identity.empty() && p.identity.find('#') == std::string::npos);
    FUZZ_CHECK(printableUtf8(p.identity) && p.identity.find(' ') == std::string::npos);
    canonical +=
        token + (p.read ? " read" : "") + (p.evict ? " evict" : "") + " name=" + p.identity + "\n";
  }
  TokenMap again;
  FUZZ_CHECK(!parseTokens(canonical, again).has_value());
  FUZZ_CHECK(again == tokens);

  if (tokens.size() > 64) {
    return;  // check() is linear in the tokens: keep each run fast.
  }
  TokenStore store;
  store.setForTest(tokens);
  for (const auto& [token, p] : tokens) {
    for (const std::string& header :
         {"Bearer " + token, "bearer\t " + token + " ", " BEARER   " + token}) {
      Principal who;
      const auto read = store.check(header, Scope::Read, &who);
      FUZZ_CHECK(read == (p.read ? TokenStore::Check::Ok : TokenStore::Check::PermissionDenied));
      FUZZ_CHECK(who == p);
      const auto evict = store.check(header, Scope::Evict);
      FUZZ_CHECK(evict == (p.evict ? TokenStore::Check::Ok : TokenStore::Check::PermissionDenied));
    }
    FUZZ_CHECK(store.check("Basic " + token, Scope::Read) == TokenStore::Check::Unauthenticated);
  }
}

bool startsWithBearer(std::string_view v) {
  const size_t start = v.find_first_not_of(" \t");
  if (start == std::string_view::npos || v.size() - start < 6) {
    return false;
  }
  for (size_t i = 0; i < 6; ++i) {
    const char c = v[start + i];
    if ((c | 0x20) != "bearer"[i]) {
      return false;
    }
  }
  return true;
}

void checkBearer(std::string_view header) {
  const std::string_view token = bearerToken(header);
  if (token.empty()) {
    return;
  }
  FUZZ_CHECK(startsWithBearer(header));
  FUZZ_CHECK(token.find_first_of(" \t") == std::string_view::npos);
  // A view into the header itself, and the header holds nothing else but spaces after it.
  FUZZ_CHECK(token.data() >= header.data() &&
             token.data() + token.size() <= header.data() + header.size());
  const size_t after = static_cast<size_t>(token.data() - header.data()) + token.size();
  FUZZ_CHECK(header.find_first_not_of(" \t", after) == std::string_view::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  checkTokensFile(text);
  checkBearer(text);
  return 0;
}
