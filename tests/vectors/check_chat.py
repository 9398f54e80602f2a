#!/usr/bin/env python3
"""Checks tests/vectors/chat.json from docs/PROTOCOL.md §13 alone: sealed private messages and
replies (X25519 of RFC 7748, the Ed25519-to-X25519 map, the §2.1 hash framing, ChaCha20-Poly1305
of RFC 8439) and pseudonym posts (Ed25519 of RFC 8032). Standard library only; the hash
framing, ChaCha20 block and Ed25519 come from generate.py next to this file.

Run: python3 tests/vectors/check_chat.py   (exit 1 and what failed otherwise)
"""
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from generate import H, chacha_block, ed25519_public, ed25519_verify, _ed_decompress  # noqa: E402

P = 2**255 - 19
FAILS = []


def check(what, got, want):
    if got != want:
        FAILS.append(f"{what}: got {got!r}, want {want!r}")


def x25519(k, u):
    """RFC 7748 §5: clamp k, Montgomery ladder on u (top bit masked)."""
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + 121665 * e) % P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


X25519_BASE = (9).to_bytes(32, "little")


def ed_to_x25519_public(ed_public):
    """u = (1 + y) / (1 − y) (RFC 7748 §4.1)."""
    pt = _ed_decompress(ed_public)
    y = pt[1] * pow(pt[2], P - 2, P) % P
    return ((1 + y) * pow((1 - y) % P, P - 2, P) % P).to_bytes(32, "little")


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:32], "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) % (1 << 128)).to_bytes(16, "little")


def _pad16(b):
    return b"\x00" * (-len(b) % 16)


def chacha20_ietf(key, counter, data):
    """RFC 8439 ChaCha20 with a zero 96-bit nonce (the only nonce §13.2 uses): for a zero nonce
    and a counter below 2^32 the djb block of generate.py is the same block."""
    out = bytearray()
    for i in range(0, len(data), 64):
        ks = chacha_block(key, counter + i // 64, 0)
        out += bytes(a ^ b for a, b in zip(data[i:i + 64], ks))
    return bytes(out)


def aead_seal(key, aad, pt):
    otk = chacha_block(key, 0, 0)[:32]
    ct = chacha20_ietf(key, 1, pt)
    mac = aad + _pad16(aad) + ct + _pad16(ct) + struct.pack("<QQ", len(aad), len(ct))
    return ct + poly1305(otk, mac)


def aead_open(key, aad, body):
    ct, tag = body[:-16], body[-16:]
    otk = chacha_block(key, 0, 0)[:32]
    mac = aad + _pad16(aad) + ct + _pad16(ct) + struct.pack("<QQ", len(aad), len(ct))
    if poly1305(otk, mac) != tag:
        return None
    return chacha20_ietf(key, 1, ct)


def check_sealed(c):
    w = c["name"]
    gid = bytes.fromhex(c["group_id"])
    r = c["recipient"]
    if "ed25519_seed" in r:
        seed = bytes.fromhex(r["ed25519_seed"])
        check(f"{w} ed25519_public", ed25519_public(seed).hex(), r["ed25519_public"])
        # The secret: the first half of SHA-512(seed) (RFC 8032 §5.1.5), clamped by X25519.
        secret = hashlib.sha512(seed).digest()[:32]
        public = ed_to_x25519_public(bytes.fromhex(r["ed25519_public"]))
        check(f"{w} x25519 from the Ed25519 key", public.hex(), r["x25519_public"])
        check(f"{w} x25519 from the secret", x25519(secret, X25519_BASE).hex(), r["x25519_public"])
    else:
        secret = bytes.fromhex(r["x25519_secret"])
        public = x25519(secret, X25519_BASE)
        check(f"{w} one-time public", public.hex(), r["x25519_public"])
    eph_secret = bytes.fromhex(c["eph_secret"])
    eph = x25519(eph_secret, X25519_BASE)
    check(f"{w} eph_public", eph.hex(), c["eph_public"])
    reply_public = x25519(bytes.fromhex(c["reply_secret"]), X25519_BASE)
    check(f"{w} reply_public", reply_public.hex(), c["reply_public"])
    kind = 1 if "ed25519_seed" in r else 2
    inner = bytes([kind]) + reply_public + bytes.fromhex(c["text"])
    check(f"{w} inner", inner.hex(), c["inner"])
    shared = x25519(eph_secret, public)
    key = H("dcnet/v1/sealed-key", gid, eph, public, shared)
    aad = b"\xff\x01" + eph
    msg = aad + aead_seal(key, aad, inner)
    check(f"{w} message", msg.hex(), c["message"])
    # The recipient's side: the same secret from its own key and the ephemeral one.
    m = bytes.fromhex(c["message"])
    shared_r = x25519(secret, m[2:34])
    key_r = H("dcnet/v1/sealed-key", gid, m[2:34], public, shared_r)
    check(f"{w} opens", aead_open(key_r, m[:34], m[34:]), inner)
    bad = bytearray(m)
    bad[-1] ^= 1
    check(f"{w} a flipped tag bit is refused", aead_open(key_r, bad[:34], bytes(bad[34:])), None)


def check_nym(c):
    w = c["name"]
    gid = bytes.fromhex(c["group_id"])
    public = ed25519_public(bytes.fromhex(c["nym_seed"]))
    check(f"nym {w} public", public.hex(), c["nym_public"])
    text = bytes.fromhex(c["text"])
    name = c["name"].encode()
    digest = H("dcnet/v1/nym-post", gid, public, struct.pack("<Q", c["seq"]), name, text)
    check(f"nym {w} digest", digest.hex(), c["digest"])
    m = bytes.fromhex(c["message"])
    check(f"nym {w} marker and kind", m[:2], b"\xff\x02")
    check(f"nym {w} key", m[2:34], public)
    sig = m[34:98]
    check(f"nym {w} seq", struct.unpack("<Q", m[98:106])[0], c["seq"])
    n = m[106]
    check(f"nym {w} name", m[107:107 + n], name)
    check(f"nym {w} text", m[107 + n:], text)
    check(f"nym {w} signature verifies", ed25519_verify(public, digest, sig), True)
    check(f"nym {w} another text does not", ed25519_verify(public, digest[::-1], sig), False)


def self_checks():
    # RFC 7748 §5.2, first X25519 test vector.
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    check("RFC 7748 5.2", x25519(k, u).hex(),
          "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    # RFC 8439 §2.5.2 Poly1305.
    key = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    check("RFC 8439 2.5.2", poly1305(key, b"Cryptographic Forum Research Group").hex(),
          "a8061dc1305136c6c22b8baf0c0127a9")


def main():
    with open(os.path.join(HERE, "chat.json")) as f:
        v = json.load(f)
    self_checks()
    for c in v["sealed"]:
        check_sealed(c)
    for c in v["nym"]:
        check_nym(c)
    if FAILS:
        print("\n".join(FAILS))
        sys.exit(1)
    print(f"chat.json: {len(v['sealed'])} sealed messages and {len(v['nym'])} posts check out")


if __name__ == "__main__":
    main()
