// The epmd frame assembler (server/epmd/codec.h) on arbitrary byte streams cut into
// arbitrary reads. Input: byte 0 seeds the read sizes (a kernel may return any amount up to
// what was asked), the rest is what the peer sends. Packets are assembled one after another
// on one reused assembler, as a session reuses its buffer.
//
// Invariants, against an independent model of OTP's do_read: never more than
// INBUF_SIZE - 1 bytes held; a length of 0 or >= 3058 is InvalidSize as soon as the length
// is known; bytes past the packet in the read that completed the length are an Overrun;
// otherwise Complete after exactly length + 2 bytes, with the body being those bytes.

#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/epmd/codec.h"

namespace {

using epmdx::epmd::FrameAssembler;
using epmdx::epmd::kInBufSize;
using epmdx::epmd::kMaxBody;

// A small deterministic generator of read sizes (xorshift32).
class ReadSizes {
 public:
  explicit ReadSizes(uint8_t seed) : state_(0x9E3779B9u ^ (seed * 0x01000193u)), seed_(seed) {}
  size_t next(size_t asked) {
    if (seed_ == 0) {
      return asked;  // Seed 0: every read returns all it may.
    }
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return 1 + state_ % asked;
  }

 private:
  uint32_t state_;
  uint8_t seed_;
};

// Feeds one packet from `stream`; returns how many bytes it consumed, or 0 to stop.
size_t onePacket(FrameAssembler& f, std::string_view stream, ReadSizes& sizes) {
  f.reset();
  FUZZ_CHECK(f.received() == 0);
  size_t used = 0;
  for (;;) {
    const size_t asked = f.readSize();
    FUZZ_CHECK(asked >= 1 && asked <= kInBufSize - 1);
    const size_t n = std::min(sizes.next(asked), stream.size() - used);
    if (n == 0) {
      FUZZ_CHECK(f.received() == used);  // The peer stopped sending: still NeedMore.
      return 0;
    }
    const size_t before = used;
    const auto status = f.append(reinterpret_cast<const uint8_t*>(stream.data()) + used, n);
    used += n;
    FUZZ_CHECK(f.received() == used);
    FUZZ_CHECK(f.received() <= kInBufSize - 1);  // OTP's buffer: never more is held.
    FUZZ_CHECK(f.bytes() == stream.substr(0, used));
    const bool length_known_now = before < 2 && used >= 2;
    const size_t length =
        used >= 2 ? (static_cast<uint8_t>(stream[0]) << 8) | static_cast<uint8_t>(stream[1]) : 0;
    const bool bad_length = length == 0 || length > kMaxBody;
    switch (status) {
      case FrameAssembler::Status::InvalidSize:
        FUZZ_CHECK(length_known_now && bad_length);
        return 0;
      case FrameAssembler::Status::Overrun:
        FUZZ_CHECK(length_known_now && !bad_length && used > length + 2);
        return 0;
      case FrameAssembler::Status::Complete:
        FUZZ_CHECK(!bad_length && used == length + 2);
        FUZZ_CHECK(f.bodySize() == length && f.bodySize() >= 1 && f.bodySize() <= kMaxBody);
        FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(f.body()), f.bodySize()) ==
                   stream.substr(2, length));
        return used;
      case FrameAssembler::Status::NeedMore:
        FUZZ_CHECK(used < 2 || (!bad_length && used < length + 2));
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) {
    return 0;
  }
  ReadSizes sizes(data[0]);
  std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  FrameAssembler f;
  while (!stream.empty()) {
    const size_t used = onePacket(f, stream, sizes);
    if (used == 0) {
      break;
    }
    stream.remove_prefix(used);
  }
  return 0;
}
