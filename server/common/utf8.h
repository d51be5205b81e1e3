#pragma once

#include <cstddef>
#include <cstdint>

namespace epmdx {

/// Counts the characters of a UTF-8 byte string with exactly the rules of OTP's epmd
/// (`verify_utf8` in erts/epmd/src/epmd_srv.c): overlong forms, UTF-16 surrogates, code
/// points above U+10FFFF and truncated sequences are invalid. NUL counts as a character.
/// @return the number of characters, or -1 if the bytes are not valid UTF-8.
int countUtf8Chars(const uint8_t* data, size_t size);

}  // namespace epmdx
