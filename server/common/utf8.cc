#include "server/common/utf8.h"

namespace epmdx {

int countUtf8Chars(const uint8_t* s, size_t size) {
  auto cont = [](uint8_t b) { return (b & 0xC0) == 0x80; };
  int chars = 0;
  size_t i = 0;
  while (i < size) {
    const uint8_t b = s[i];
    const size_t left = size - i;
    if ((b & 0x80) == 0) {
      i += 1;
    } else if ((b & 0xE0) == 0xC0) {
      if (left < 2 || !cont(s[i + 1]) || b < 0xC2) {  // b < 0xC2: overlong
        return -1;
      }
      i += 2;
    } else if ((b & 0xF0) == 0xE0) {
      if (left < 3 || !cont(s[i + 1]) || !cont(s[i + 2]) || (b == 0xE0 && s[i + 1] < 0xA0)) {
        return -1;
      }
      if ((b & 0x0F) == 0x0D && (s[i + 1] & 0x20) != 0) {  // U+D800..U+DFFF
        return -1;
      }
      i += 3;
    } else if ((b & 0xF8) == 0xF0) {
      if (left < 4 || !cont(s[i + 1]) || !cont(s[i + 2]) || !cont(s[i + 3]) ||
          (b == 0xF0 && s[i + 1] < 0x90)) {
        return -1;
      }
      if ((b & 0x07) > 4 || ((b & 0x07) == 4 && (s[i + 1] & 0x3F) > 0x0F)) {  // > U+10FFFF
        return -1;
      }
      i += 4;
    } else {
      return -1;
    }
    ++chars;
  }
  return chars;
}

}  // namespace epmdx
