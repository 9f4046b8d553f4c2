#!/usr/bin/env python3
# Writes the seed corpus of each fuzz target into fuzz/corpus/<target>/:
# valid headers of each kind, ring programs, rpc frames, names.  The input
# formats are those the targets describe at their top; the region layout is
# docs/format.md's.  Run from anywhere: python3 fuzz/seeds.py
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
HDR = 12288


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def header(kind, total, geom, state=1, server=0):
    g = list(geom) + [0] * (8 - len(geom))
    h = struct.pack("<IIHHIQ8QIIQQI", 0x6B6D6873, 0x01020304, 1, kind,
                    HDR, total, *g, 1000, 1, 0, 12345, 0)
    h = h.ljust(0x100, b"\0") + struct.pack("<I", state)
    if server:
        h = h.ljust(0x400, b"\0") + struct.pack("<Q", server)
    return h


def ring_total(n, size):
    align = 4096 if size >= 4096 else 64
    stride = (size + align - 1) // align * align
    data = 0x23000 + 64 * n
    data = (data + align - 1) // align * align
    return data + n * stride


def open_seed(sel, how, total, img):
    return bytes([sel, how]) + struct.pack("<I", total) + img


# fuzz_open: byte 0 opener, byte 1 how, u32 file length, the image.
buf = header(1, HDR + 4096, [4096])
put("fuzz_open", "buffer-name", open_seed(0, 0, HDR + 4096, buf))
put("fuzz_open", "buffer-fd", open_seed(0, 1, HDR + 4096, buf))
arr = header(2, HDR + 8 * 16, [8, 16])
put("fuzz_open", "array", open_seed(1, 4, HDR + 128, arr))
put("fuzz_open", "event-manual", open_seed(2, 0, HDR, header(3, HDR, [1])))
put("fuzz_open", "event-shutdown",
    open_seed(2, 1, HDR, header(3, HDR, [0], state=2)))
rt = ring_total(4, 64)
ring = header(4, rt, [4, 64])
put("fuzz_open", "ring", open_seed(3, 0, rt, ring))
put("fuzz_open", "ring-stat", open_seed(5, 0, rt, ring))
rpc = header(5, HDR, [8, 128, 1024], server=(5 << 32) | 1)
put("fuzz_open", "rpc-connect", open_seed(4, 0, HDR, rpc))
put("fuzz_open", "all-kinds", open_seed(7, 0, HDR + 4096, buf))
put("fuzz_open", "truncated", open_seed(0, 0, 100, buf[:100]))

# fuzz_ring: byte 0 geometry, then steps (fuzz/fuzz_ring.c).
W0, R0, ACQ, RES, DONE, ABORT, STATS = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
H1 = 0x10
u16 = lambda v: struct.pack("<H", v)
u64 = lambda v: struct.pack("<Q", v)
put("fuzz_ring", "traffic", bytes([2]) +
    bytes([W0]) + u16(10) + bytes([W0 | H1]) + u16(20) +
    bytes([R0]) + u16(100) + bytes([ACQ | H1]) + bytes([DONE | H1, 0]) +
    bytes([RES]) + bytes([DONE, 0]) + u16(7) + bytes([R0 | H1]) + u16(64) +
    bytes([STATS, STATS | H1]))
put("fuzz_ring", "pokes", bytes([2]) +
    bytes([RES]) + bytes([0x80, 0, 2, 5]) + bytes([W0 | H1]) + u16(3) +
    bytes([R0 | H1]) + u16(64) + bytes([0x82, 1, 0]) + u64(3) +
    bytes([ACQ]) + bytes([0x83, 0, 0]) + u64(1 << 40) + bytes([R0]) + u16(64)
    + bytes([STATS]))
put("fuzz_ring", "dead-holder", bytes([1]) +
    bytes([W0]) + u16(1) + bytes([W0]) + u16(2) + bytes([ACQ | H1]) +
    bytes([RES | H1]) + bytes([0x19]) + bytes([R0]) + u16(64) +
    bytes([W0]) + u16(3) + bytes([R0]) + u16(64) + bytes([R0]) + u16(64) +
    bytes([STATS]))
put("fuzz_ring", "intent", bytes([3]) +
    bytes([RES | H1]) + bytes([0x84, 0x04, 2, 0]) + bytes([W0]) + u16(5) +
    bytes([R0]) + u16(200) + bytes([DONE | H1, 0]) + u16(4) +
    bytes([R0]) + u16(200) + bytes([0x07, 0]) + bytes([STATS]))

# fuzz_rpc: byte 0 how (bit 0 server, bit 1 hello first, bits 2-3
# geometry), then steps (fuzz/fuzz_rpc.c).
FIELDS, RAW, POLL, CALL, WAIT, CANCEL, DRAIN = 0, 2, 3, 4, 5, 6, 7


def fields(t, bad, msg_k, corr_k, total, off_mul, extra=b""):
    # t % 7 is the type; t // 7 the handler's choice (first byte).
    return (bytes([FIELDS, t, bad, msg_k]) +
            (bytes([corr_k]) if t % 7 != 5 else b"") + u16(total) +
            bytes([off_mul]) + extra)


geo1 = 1 << 2  # 4 nodes of 128 bytes, max_msg 1000: 80 bytes a frame
put("fuzz_rpc", "client-reply", bytes([2 | geo1]) +
    bytes([CALL, 0]) + u16(10) + u16(100) +
    fields(2, 0, 0, 0, 50, 0) + bytes([POLL, WAIT, 0]))
put("fuzz_rpc", "client-multi-reply", bytes([2 | geo1]) +
    bytes([CALL, 1]) + u16(0) + u16(300) +
    fields(2, 0, 1, 1, 200, 0) + fields(2, 0, 1, 1, 200, 1) +
    fields(2, 0, 1, 1, 200, 2) + bytes([WAIT, 1]))
put("fuzz_rpc", "client-error", bytes([2 | geo1]) +
    bytes([CALL, 2]) + u16(3) + u16(10) +
    fields(3, 0, 2, 2, 20, 0, u16(5)) + bytes([POLL, WAIT, 2, DRAIN]))
put("fuzz_rpc", "server-request", bytes([3 | geo1]) +
    fields(1, 0, 3, 0, 10, 0) + bytes([POLL]) +
    fields(1, 0, 4, 0, 200, 0) + fields(1, 0, 4, 0, 200, 1) +
    fields(1, 0, 4, 0, 200, 2) + bytes([POLL, DRAIN]) +
    fields(8, 0, 5, 0, 30, 0) + fields(4, 0, 5, 5, 0, 0) + bytes([POLL]))
put("fuzz_rpc", "server-calls-client", bytes([3 | geo1]) +
    bytes([CALL, 0]) + u16(5) + u16(50) + fields(2, 0, 0, 0, 5, 0) +
    bytes([POLL, WAIT, 0, CALL, 1]) + u16(1) + u16(1) + bytes([CANCEL, 1]) +
    fields(6, 0, 0, 0, 0, 0) + bytes([POLL]))
put("fuzz_rpc", "no-hello", bytes([0 | geo1]) +
    fields(1, 0, 0, 0, 10, 0) + fields(5, 0, 0, 0, 0, 0) +
    fields(1, 0, 0, 0, 10, 0) + bytes([POLL]))
raw = struct.pack("<IHBBiIQQQQ", 0x50524B53, 1, 1, 0, 0, 4, 9, 0, 4, 0) + b"abcd"
put("fuzz_rpc", "raw", bytes([3]) + bytes([RAW]) + u16(len(raw)) + raw +
    bytes([POLL]))

# fuzz_names: byte 0 (bit 7: use an accepted name for real), the name.
for i, (k, n) in enumerate([(0x80, b"frames"), (0x80, b"a.b_c-D9"),
                            (0x80, b"dir-less/obj"), (0x80, b"/obj"),
                            (0x00, b".."), (0x00, b"a/.."),
                            (0x00, b"bad name"), (0x03, b"a" * 201),
                            (0x80, b"b" * 200), (0x00, b"x\xff/\x01y"),
                            (0x80, b"./rel"), (0x00, b"p/" * 2049)]):
    put("fuzz_names", "%02d" % i, bytes([k]) + n)

# fuzz_topic: byte 0 geometry (bits 0-2), lossy (bit 3), the second handle
# opened from a descriptor (bit 4); then steps (fuzz/fuzz_topic.c): calls
# (handle << 4 | call), pokes (0x80 | what).
PUB, LOAN, COMMIT, ABANDON, SUB, UNSUB, RECV, ACQ, REL, LATEST, TSTATS, \
    FSTAT, OPEN, CLOSE, MISUSE, SHUT = range(16)
T1, T2 = 0x10, 0x20
P_HEAD, P_TAIL, P_FLOOR, P_SEQ, P_LINK, P_START, P_LEN, P_DESC, \
    P_INTENT, P_CURSOR, P_CTR, P_HDR, P_GEOM, P_EC, P_HISTORY, P_BYTES = \
    [0x80 | i for i in range(16)]
near = lambda off, tail=0: bytes([((off & 0x7f) << 1) | tail])
same = lambda d=0: bytes([2, d & 0xff])  # fuzz_word: the base + d
odd = lambda i: bytes([1 + 4 * i])  # fuzz_word: odd[i] (2: all ones)
put("fuzz_topic", "traffic", bytes([0x11]) +
    bytes([T1 | SUB, 0]) + bytes([PUB]) + u16(10) + bytes([PUB]) + u16(50) +
    bytes([T1 | RECV, 1, T1 | ACQ, T1 | REL]) +
    bytes([LOAN]) + u16(20) + bytes([COMMIT, 0]) + u16(15) +
    bytes([LOAN]) + u16(30) + bytes([ABANDON, 0]) +
    bytes([T1 | RECV, 1, LATEST, 1, TSTATS, FSTAT]) +
    bytes([T2 | OPEN, 0, T2 | SUB, 1, T2 | RECV, 1, T2 | RECV, 1]) +
    bytes([T2 | LOAN]) + u16(99) + bytes([T2 | TSTATS, T1 | MISUSE, 0]) +
    bytes([T1 | ACQ, T2 | CLOSE, T1 | UNSUB, T1 | MISUSE, 1, SHUT, 0x5d]) +
    bytes([T1 | RECV, 1, PUB]) + u16(1))
put("fuzz_topic", "lossy-lapped", bytes([0x08]) +
    bytes([T1 | SUB, 0]) + (bytes([PUB]) + u16(1)) * 70 +
    bytes([T1 | RECV, 1, T1 | RECV, 1, T1 | ACQ]) +
    (bytes([PUB]) + u16(1)) * 70 + bytes([T1 | REL, T1 | TSTATS]))
put("fuzz_topic", "lossless-full", bytes([0x00]) +
    bytes([T1 | SUB, 0xff]) + (bytes([PUB]) + u16(1)) * 70 +
    bytes([T1 | ACQ, T1 | CLOSE]) + (bytes([PUB]) + u16(1)) * 4 +
    bytes([TSTATS, T1 | OPEN, 1, T1 | SUB, 1, T1 | RECV, 1]))
# A publisher (slot 4, nobody's) that claimed message 0 and died.
put("fuzz_topic", "dead-publisher", bytes([0x01]) +
    bytes([T1 | SUB, 0]) +
    bytes([P_INTENT, 0, 4]) + near(0) + same() + same(1) +
    bytes([P_HEAD]) + same(1) + bytes([PUB]) + u16(7) +
    bytes([T1 | RECV, 1, T1 | RECV, 1, TSTATS]))
put("fuzz_topic", "descriptors", bytes([0x05]) +
    bytes([T1 | SUB, 0xff]) + (bytes([PUB]) + u16(100)) * 3 +
    bytes([P_LEN]) + near(0x7f) + odd(2) + bytes([T1 | RECV, 1]) +
    bytes([P_START]) + near(0x7e) + odd(4) + bytes([T1 | ACQ]) +
    bytes([P_DESC]) + near(0) + same(1) + same(0) + u16(7) + same(0) +
    bytes([3]) + bytes([T1 | REL, T1 | RECV, 1, LATEST, 1]) +
    bytes([P_SEQ]) + near(0x7f) + same(1) + bytes([2, LATEST, 1]) +
    bytes([P_BYTES, 1]) + u64(0)[:4] + bytes([16]) + b"\xff" * 16 +
    bytes([T1 | RECV, 1, FSTAT, TSTATS]))
# A history of 10 messages forged near the end of the positions, read.
put("fuzz_topic", "history", bytes([0x0c]) +
    bytes([T1 | SUB, 1]) + bytes([P_HISTORY]) + odd(7) + same(0) +
    bytes([10, 0x55]) + u16(300) * 10 + bytes([3]) +
    bytes([T1 | RECV, 1, T1 | ACQ, T1 | REL, LATEST, 1, PUB]) + u16(9) +
    bytes([T2 | OPEN, 1, T2 | SUB, 1, T2 | RECV, 1, TSTATS, FSTAT]))
# The policy word flipped: the next opener sees a lossy topic.
put("fuzz_topic", "geometry", bytes([0x03]) +
    bytes([PUB]) + u16(5) + bytes([P_GEOM, 5]) + odd(1) +
    bytes([T2 | OPEN, 0, T2 | SUB, 1, T2 | RECV, 1, FSTAT]) +
    bytes([P_GEOM, 0]) + same(1) + bytes([FSTAT, T2 | CLOSE, T2 | OPEN, 1]))
