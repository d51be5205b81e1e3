// The epmd codec against OTP's rules, case by case (erts/epmd/src/epmd_srv.c and
// erts/epmd/test/epmd_SUITE.erl). The differential test checks the same against OTP live.

#include "server/epmd/codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "server/common/utf8.h"
#include "tests/support/net.h"

namespace epmdx::epmd {
namespace {

using testing::alive2Body;
using testing::bytes;

const Access kLocal{true, false};
const Access kLocalRelaxed{true, true};
const Access kRemote{false, true};

Result<Request, DecodeError> decode(const std::string& body, Access a = kLocal) {
  return decodeRequest(reinterpret_cast<const uint8_t*>(body.data()), body.size(), a);
}

DecodeError errorOf(const std::string& body, Access a = kLocal) {
  auto r = decode(body, a);
  EXPECT_FALSE(r.ok());
  return r.ok() ? DecodeError::UnknownRequest : r.error();
}

TEST(EpmdCodec, Alive2DecodesEveryField) {
  auto r = decode(alive2Body("foo", 4711, 6, 5, std::string("AB\0C", 4), 72));
  ASSERT_TRUE(r.ok());
  const auto& n = std::get<Alive2Request>(r.value()).node;
  EXPECT_EQ(n.name, "foo");
  EXPECT_EQ(n.port, 4711);
  EXPECT_EQ(n.node_type, 72);
  EXPECT_EQ(n.protocol, 0);
  EXPECT_EQ(n.highest_version, 6);
  EXPECT_EQ(n.lowest_version, 5);
  EXPECT_EQ(n.extra, std::string("AB\0C", 4));
}

TEST(EpmdCodec, Alive2RefusedFromNonLocalPeer) {
  EXPECT_EQ(errorOf(alive2Body("foo", 1), kRemote), DecodeError::NotLocal);
}

TEST(EpmdCodec, Alive2TooSmall) {
  // alive_req_too_small_1 / _2 of epmd_SUITE.
  EXPECT_EQ(errorOf(bytes({120, 0, 1, 77, 0, 0, 5, 0, 5, 0, 0})), DecodeError::Alive2TooSmall);
  EXPECT_EQ(errorOf(bytes({120, 0, 1, 77, 0, 0, 5, 0, 5})), DecodeError::Alive2TooSmall);
  // 13 bytes: empty name and empty extra.
  EXPECT_EQ(errorOf(alive2Body("", 1)), DecodeError::Alive2TooSmall);
}

TEST(EpmdCodec, Alive2EmptyNameWithExtraPassesTheSizeChecksAsInOtp) {
  auto r = decode(alive2Body("", 1, 5, 5, "x"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<Alive2Request>(r.value()).node.name, "");
}

TEST(EpmdCodec, Alive2NameLengthPastBody) {
  std::string b = alive2Body("foo", 1);
  b[10] = 50;  // Nlen = 50 but 3 bytes follow.
  EXPECT_EQ(errorOf(b), DecodeError::Alive2NameSize);
}

TEST(EpmdCodec, Alive2ExtraLengthPastBody) {
  // buffer_overrun_1: Elen = N with no extra bytes.
  std::string b = alive2Body("gurka", 1, 5, 5);
  b[b.size() - 1] = 10;
  EXPECT_EQ(errorOf(b), DecodeError::Alive2ExtraSize);
}

TEST(EpmdCodec, Alive2BytesAfterExtraAreIgnored) {
  auto r = decode(alive2Body("foo", 1, 5, 5, "e") + "trailing");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<Alive2Request>(r.value()).node.extra, "e");
}

TEST(EpmdCodec, Alive2NameWithNul) {
  EXPECT_EQ(errorOf(alive2Body(std::string("foo\0bar", 7), 1)), DecodeError::NameContainsNul);
  EXPECT_EQ(errorOf(alive2Body(std::string("foobar\0", 7), 1)), DecodeError::NameContainsNul);
}

TEST(EpmdCodec, Alive2LongNamesAreTheRegistrysToRefuse) {
  // Over 255 characters is an error *reply*, decided by the registry, not a close.
  EXPECT_TRUE(decode(alive2Body(std::string(600, 'a'), 1)).ok());
}

TEST(EpmdCodec, Port2LooksUpTheRestOfThePacket) {
  auto r = decode("zfoo");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<Port2Request>(r.value()).name, "foo");
}

TEST(EpmdCodec, Port2StripsOneTrailingNul) {
  auto r = decode(std::string("zfoo\0", 5));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<Port2Request>(r.value()).name, "foo");
  EXPECT_EQ(errorOf(std::string("zfoo\0\0", 6)), DecodeError::NameContainsNul);
}

TEST(EpmdCodec, Port2AllowedFromAnyPeer) {
  EXPECT_TRUE(decode("zfoo", kRemote).ok());
}

TEST(EpmdCodec, Port2EmptyOrNulInside) {
  EXPECT_EQ(errorOf("z"), DecodeError::Port2TooSmall);
  EXPECT_EQ(errorOf(std::string("z\0", 2)), DecodeError::Port2TooSmall);
  EXPECT_EQ(errorOf(std::string("zfo\0o", 5)), DecodeError::NameContainsNul);
}

TEST(EpmdCodec, Port2InvalidUtf8) {
  EXPECT_EQ(errorOf(bytes({'z', 0xC3})), DecodeError::Port2InvalidName);
  EXPECT_EQ(errorOf(bytes({'z', 0xC0, 0x80})), DecodeError::Port2InvalidName);        // Overlong.
  EXPECT_EQ(errorOf(bytes({'z', 0xED, 0xA0, 0x80})), DecodeError::Port2InvalidName);  // Surrogate.
  EXPECT_EQ(errorOf(bytes({'z', 0xF4, 0x90, 0x80, 0x80})), DecodeError::Port2InvalidName);
  EXPECT_EQ(errorOf(bytes({'z', 0xFF})), DecodeError::Port2InvalidName);
}

TEST(EpmdCodec, Port2NameOf254CharactersAtMost) {
  // OTP's check includes the NUL terminator as a character: 254 is the longest lookup.
  EXPECT_TRUE(decode("z" + std::string(254, 'a')).ok());
  EXPECT_EQ(errorOf("z" + std::string(255, 'a')), DecodeError::Port2InvalidName);
}

TEST(EpmdCodec, NamesFromAnyPeerIgnoresTrailingBytes) {
  EXPECT_TRUE(std::holds_alternative<NamesRequest>(decode("n", kRemote).value()));
  EXPECT_TRUE(std::holds_alternative<NamesRequest>(decode("nxyz").value()));
}

TEST(EpmdCodec, DumpAndKillOnlyFromLocal) {
  EXPECT_TRUE(std::holds_alternative<DumpRequest>(decode("d").value()));
  EXPECT_TRUE(std::holds_alternative<KillRequest>(decode("k").value()));
  EXPECT_EQ(errorOf("d", kRemote), DecodeError::NotLocal);
  EXPECT_EQ(errorOf("k", kRemote), DecodeError::NotLocal);
}

TEST(EpmdCodec, StopNeedsLocalRelaxedAndAName) {
  EXPECT_EQ(errorOf("sfoo", kRemote), DecodeError::NotLocal);
  EXPECT_EQ(errorOf("sfoo", kLocal), DecodeError::StopNotAllowed);
  EXPECT_EQ(errorOf("s", kLocalRelaxed), DecodeError::StopTooSmall);
  auto r = decode(std::string("sfoo\0bar", 8), kLocalRelaxed);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::get<StopRequest>(r.value()).name, "foo");  // C string, as OTP's strcmp.
}

TEST(EpmdCodec, UnknownCodes) {
  for (int code : {0, int{'a'}, int{'p'}, int{'y'}, int{'w'}, 255}) {
    EXPECT_EQ(errorOf(std::string(1, static_cast<char>(code))), DecodeError::UnknownRequest);
  }
}

// ---- Framing ----------------------------------------------------------------------------

FrameAssembler::Status feed(FrameAssembler& f, const std::string& bytes) {
  EXPECT_LE(bytes.size(), f.readSize());
  return f.append(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

TEST(FrameAssembler, CompleteInOneRead) {
  FrameAssembler f;
  ASSERT_EQ(feed(f, testing::frame("n")), FrameAssembler::Status::Complete);
  EXPECT_EQ(f.bodySize(), 1u);
  EXPECT_EQ(f.body()[0], 'n');
}

TEST(FrameAssembler, ReassemblesByteByByte) {
  FrameAssembler f;
  const std::string p = testing::frame("zfoo");
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    ASSERT_EQ(feed(f, p.substr(i, 1)), FrameAssembler::Status::NeedMore);
  }
  EXPECT_EQ(feed(f, p.substr(p.size() - 1)), FrameAssembler::Status::Complete);
}

TEST(FrameAssembler, ReadsOnlyWhatIsMissingOnceTheLengthIsKnown) {
  FrameAssembler f;
  ASSERT_EQ(feed(f, bytes({0, 4})), FrameAssembler::Status::NeedMore);
  EXPECT_EQ(f.readSize(), 4u);
}

TEST(FrameAssembler, FirstReadTakesUpToBufferMinusOne) {
  FrameAssembler f;
  EXPECT_EQ(f.readSize(), kInBufSize - 1);
}

TEST(FrameAssembler, ZeroAndOversizedLengths) {
  FrameAssembler a;
  EXPECT_EQ(feed(a, bytes({0, 0})), FrameAssembler::Status::InvalidSize);
  FrameAssembler b;
  EXPECT_EQ(feed(b, bytes({0x0B, 0xF2})), FrameAssembler::Status::InvalidSize);  // 3058.
  FrameAssembler c;
  EXPECT_EQ(feed(c, bytes({0xF6, 0x18})), FrameAssembler::Status::InvalidSize);  // 63000.
  FrameAssembler d;
  EXPECT_EQ(feed(d, bytes({0x0B, 0xF1})), FrameAssembler::Status::NeedMore);  // 3057: largest.
}

TEST(FrameAssembler, BytesPastThePacketInTheFirstRead) {
  FrameAssembler f;
  EXPECT_EQ(feed(f, testing::frame("n") + "x"), FrameAssembler::Status::Overrun);
}

// ---- Replies ----------------------------------------------------------------------------

TEST(EpmdReplies, Alive2ReplyFormByHighestVersion) {
  EXPECT_EQ(encodeAlive2Reply(true, 0x01020304, 6), bytes({118, 0, 1, 2, 3, 4}));
  EXPECT_EQ(encodeAlive2Reply(true, 2, 5), bytes({121, 0, 0, 2}));
  EXPECT_EQ(encodeAlive2Reply(false, kErrorCreation, 5), bytes({121, 1, 0, 99}));
  EXPECT_EQ(encodeAlive2Reply(false, kErrorCreation, 6), bytes({118, 1, 0, 0, 0, 99}));
}

TEST(EpmdReplies, Port2FoundEchoesEverything) {
  registry::Registration r;
  r.node = {"foo", 4711, 72, 0, 6, 5, std::string("AB\0", 3)};
  EXPECT_EQ(encodePort2Found(r), bytes({119, 0, 0x12, 0x67, 72, 0, 0, 6, 0, 5, 0, 3}) + "foo" +
                                     bytes({0, 3}) + std::string("AB\0", 3));
  r.node.extra.clear();
  EXPECT_EQ(encodePort2Found(r).substr(15), bytes({0, 0}));
  EXPECT_EQ(encodePort2NotFound(), bytes({119, 1}));
}

TEST(EpmdReplies, NamesAndDumpLines) {
  EXPECT_EQ(encodePortHeader(4369), bytes({0, 0, 0x11, 0x11}));
  EXPECT_EQ(encodeNamesLine("foo", 1042), "name foo at port 1042\n");
  EXPECT_EQ(encodeDumpActiveLine("foo", 1042, 7),
            std::string("active name     <foo> at port 1042, fd = 7\n") + '\0');
  EXPECT_EQ(encodeDumpUnusedLine("foo", 1042, 7),
            std::string("old/unused name <foo>, port = 1042, fd = 7 \n") + '\0');
}

// ---- UTF-8, OTP's rules -------------------------------------------------------------------

int chars(const std::string& s) {
  return countUtf8Chars(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

TEST(Utf8, CountsAndRejectsAsOtp) {
  EXPECT_EQ(chars(""), 0);
  EXPECT_EQ(chars("abc"), 3);
  EXPECT_EQ(chars("\xC3\xA9t\xC3\xA9"), 3);      // "été"
  EXPECT_EQ(chars("\xF0\x9F\x98\x88"), 1);       // U+1F608
  EXPECT_EQ(chars("\xF4\x8F\xBF\xBF"), 1);       // U+10FFFF
  EXPECT_EQ(chars(std::string("\0", 1)), 1);     // NUL is a character.
  EXPECT_EQ(chars("\xC1\xBF"), -1);              // Overlong 2-byte.
  EXPECT_EQ(chars("\xE0\x9F\xBF"), -1);          // Overlong 3-byte.
  EXPECT_EQ(chars("\xF0\x8F\xBF\xBF"), -1);      // Overlong 4-byte.
  EXPECT_EQ(chars("\xED\xBF\xBF"), -1);          // Surrogate.
  EXPECT_EQ(chars("\xF4\x90\x80\x80"), -1);      // Above U+10FFFF.
  EXPECT_EQ(chars("\xE2\x82"), -1);              // Truncated.
  EXPECT_EQ(chars("\x80"), -1);                  // Lone continuation.
  EXPECT_EQ(chars("\xF8\x88\x80\x80\x80"), -1);  // 5-byte form.
}

}  // namespace
}  // namespace epmdx::epmd
