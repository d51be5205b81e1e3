#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/: for the epmd targets, the packet cases of
tests/integration/differential_test.cc (the packets whose replies are checked byte for byte
against OTP's epmd), so the fuzzers start from every rule the differential test covers;
for the others, the README's examples and the unit tests' cases.

Keep the two lists in step when a differential case is added. Run from anywhere:
    fuzz/make_corpus.py
"""
import os
import shutil


def put16(v):
    return bytes([(v >> 8) & 0xFF, v & 0xFF])


def frame(body):
    return put16(len(body)) + body


def alive2(name, port, high=6, low=5, extra=b"", node_type=77):
    name = name.encode() if isinstance(name, str) else name
    extra = extra.encode() if isinstance(extra, str) else extra
    return (bytes([120]) + put16(port) + bytes([node_type, 0]) + put16(high) + put16(low) +
            put16(len(name)) + name + put16(len(extra)) + extra)


def utf8_run(first, count):
    return "".join(chr(first + i) for i in range(count)).encode()


# (name, body, relaxed): one request body each, as differential_test.cc's add().
FOO5 = alive2("foo", 1042, 5, 5)
FOO6 = alive2("foo", 1042, 6, 5)
gurka_bad_extra = bytearray(alive2("gurka", 1, 5, 5))
gurka_bad_extra[-1] = 10
BODIES = [
    ("alive2_v5", FOO5, False),
    ("alive2_v6", FOO6, False),
    ("alive2_hidden_with_extra", alive2("foo", 4711, 6, 5, "extra", 72), False),
    ("alive2_too_small_1", bytes([120, 0, 1, 77, 0, 0, 5, 0, 5, 0, 0]), False),
    ("alive2_too_small_2", bytes([120, 0, 1, 77, 0, 0, 5, 0, 5]), False),
    ("alive2_empty_name_empty_extra", alive2("", 1, 5, 5), False),
    ("alive2_empty_name_with_extra", alive2("", 1, 5, 5, "x"), False),
    ("alive2_name_size_error", alive2("foo", 1, 5, 5)[:12], False),
    ("alive2_extra_size_error", bytes(gurka_bad_extra), False),
    ("alive2_nul_inside", alive2(b"foo\0bar", 1, 5, 5), False),
    ("alive2_nul_terminated", alive2(b"foobar\0", 1, 5, 5), False),
    ("alive2_600_chars", alive2("a" * 600, 1, 5, 5), False),
    ("alive2_256_chars", alive2("a" * 256, 1, 6, 5), False),
    ("alive2_255_chars", alive2("a" * 255, 1, 6, 5), False),
    ("alive2_invalid_utf8", alive2(b"\xC0\x80", 1, 6, 5), False),
    ("alive2_surrogate", alive2(b"a\xED\xA0\x80", 1, 5, 5), False),
    ("alive2_unicode_1f608", alive2(utf8_run(0x1F608, 1), 4711, 5, 5, "", 72), False),
    ("alive2_long_unicode_201", alive2(utf8_run(0x1F600, 201), 1, 5, 5), False),
    ("alive2_long_unicode_256", alive2(utf8_run(0x1F600, 256), 1, 5, 5), False),
    ("alive2_extra_1020", alive2("gurka", 1, 5, 5, b"\xFF" * 1020), False),
    ("alive2_extra_1021", alive2("gurka", 1, 5, 5, b"\xFF" * 1021), False),
    ("alive2_extra_with_nuls", alive2("foo", 1, 5, 5, b"ABC\0\0"), False),
    ("alive2_bytes_after_extra", alive2("foo", 1, 5, 5, "e") + b"trailing", False),
    ("alive2_version_zero", alive2("foo", 1, 0, 0), False),
    ("alive2_version_65535", alive2("foo", 1, 65535, 65535), False),
    ("port2_found", b"zfoo", False),
    ("port2_trailing_nul", b"zfoo\0", False),
    ("port2_two_trailing_nuls", b"zfoo\0\0", False),
    ("port2_nul_inside", b"zf\0oo", False),
    ("port2_empty", b"z", False),
    ("port2_only_nul", b"z\0", False),
    ("port2_invalid_utf8", b"z\xC3", False),
    ("port2_254_chars", b"z" + b"b" * 254, False),
    ("port2_255_chars", b"z" + b"b" * 255, False),
    ("port2_unicode", b"z" + utf8_run(0x1F608, 1), False),
    ("names_empty", b"n", False),
    ("names_trailing_bytes", b"nxyz", False),
    ("dump", b"d", False),
    ("kill_with_live_nodes", b"k", False),
    ("stop_not_relaxed", b"sfoo", False),
    ("stop_relaxed", b"sfoo", True),
    ("stop_relaxed_empty", b"s", True),
    ("stop_relaxed_nul_cut", b"sfoo\0zz", True),
    ("unknown_a", b"a", False),
    ("unknown_p", b"pfoo", False),
    ("unknown_zero", bytes([0]), False),
    ("unknown_ff", bytes([255, 1, 2]), False),
]

# (name, chunks): byte streams written in pieces, as differential_test.cc's raw().
STREAMS = [
    ("zero_length", [b"\0" * 10]),
    ("too_large", [bytes([0xF6, 0x18]) + b"z" * 3000]),
    ("len_3058", [bytes([0x0B, 0xF2]) + b"n"]),
    ("len_3057_names", [bytes([0x0B, 0xF1]) + b"n" + b"x" * 3056]),
    ("extra_bytes_in_first_read", [frame(b"n") + b"junk"]),
    ("header_then_body", [bytes([0, 1]), b"n"]),
    ("partial_packet", [bytes([0, 100]) + b"only a few bytes"]),
]

# Tokens files and Authorization values for the tokens parser (not from the differential
# test: these are the README's examples and the cases of tests/auth_test.cc).
TOKENS = [
    ("readme", b"0f3c9a6e41d2b7 read evict name=ops-automation\n77ab10c2e5f91d read name=grafana\n"),
    ("comments", b"# comment\n\nrw read evict name=ops\nro read  # dashboards\n"),
    ("crlf_tabs", b"a read\r\nb\tevict\tname=x\n\n   c read evict"),
    ("bad_scope", b"ok read\nsecret-one secret-two read\n"),
    ("no_scope", b"lonely\n"),
    ("duplicate", b"t read\n\nt evict\n"),
    ("control_byte", b"t\x01 read\n"),
    ("empty_name", b"t read name=\n"),
    ("bearer_lower", b"bearer  0123456789abcdef0123456789abcdef"),
    ("bearer_upper_tab", b"BEARER\t0123456789abcdef0123456789abcdef  "),
]


# Request targets for the REST parser (the README's requests, and broken escapes).
TARGETS = [
    ("nodes", b"/v1/nodes"),
    ("node_utf8", b"/v1/nodes/caf%C3%A9"),
    ("node_slash", b"/v1/nodes/a%2Fb"),
    ("watch_initial_token", b"/v1/watch?initial=true&access_token=abc+def%21"),
    ("watch_since", b"/v1/watch?since=1764075123456789&heartbeat_ms=15000"),
    ("readyz_verbose", b"/readyz?verbose"),
    ("repeated_key", b"/v1/watch?since=1&since=2&&=x&y="),
    ("bad_escape", b"/v1/nodes?name=%G1"),
    ("short_escape", b"/v1/nodes?name=%4"),
    ("not_origin_form", b"v1/nodes"),
    ("number", b"00018446744073709"),
]


def write(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    codec = os.path.join(root, "epmd_codec")
    frames = os.path.join(root, "frame_assembler")
    tokens = os.path.join(root, "tokens_parser")
    rest = os.path.join(root, "rest_target")
    for d in (codec, frames, tokens, rest):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    # epmd_codec: byte 0 is the access (bit 0: local peer, bit 1: relaxed, bit 2: no listing,
    # bit 3: no lookups), then the body.
    for name, body, relaxed in BODIES:
        write(codec, name, bytes([1 | (2 if relaxed else 0)]) + body)
    write(codec, "alive2_v6_not_local", bytes([0]) + FOO6)
    write(codec, "port2_found_not_local", bytes([0]) + b"zfoo")
    write(codec, "names_policy_refused", bytes([1 | 4]) + b"n")
    write(codec, "port2_policy_refused", bytes([1 | 8]) + b"zfoo")
    # frame_assembler: byte 0 seeds the read sizes, then the bytes the peer sends.
    for name, body, _ in BODIES:
        write(frames, name, bytes([0]) + frame(body))
    for name, chunks in STREAMS:
        write(frames, name, bytes([len(chunks[0]) & 0xFF]) + b"".join(chunks))
    write(frames, "two_packets", bytes([7]) + frame(b"zfoo") + frame(FOO6))
    for name, text in TOKENS:
        write(tokens, name, text)
    for name, target in TARGETS:
        write(rest, name, target)


if __name__ == "__main__":
    main()
