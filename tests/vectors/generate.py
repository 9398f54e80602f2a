#!/usr/bin/env python3
"""Known-answer vectors for dcnet, computed from docs/PROTOCOL.md with Python's standard library
only (hashlib SHA3 and a ChaCha20 written out below), independently of the Rust code.

Writes pads.json, group_id.json, kdf.json and merkle.json next to this file. The vectors that
need Ristretto255 (epoch keys, footprints, DLEQ proofs, a complete round) are written by the
Rust test `regenerate_ristretto_vectors` (cargo test --release --test vectors -- --ignored).

Run: python3 tests/vectors/generate.py
"""
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def H(tag, *parts):
    """SHA3-256(u16le(len tag) || tag || for each part: u32le(len part) || part)."""
    h = hashlib.sha3_256()
    t = tag.encode()
    h.update(struct.pack("<H", len(t)) + t)
    for p in parts:
        h.update(struct.pack("<I", len(p)) + p)
    return h.digest()


def u32(x):
    return struct.pack("<I", x)


def u64(x):
    return struct.pack("<Q", x)


# --- ChaCha20, djb variant: 64-bit block counter (words 12-13), 64-bit nonce (words 14-15) ---
def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)


def chacha_block(key, counter, nonce):
    st = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    st += list(struct.unpack("<8I", key))
    st += [counter & 0xFFFFFFFF, counter >> 32, nonce & 0xFFFFFFFF, nonce >> 32]
    w = st[:]
    for _ in range(10):
        qr(w, 0, 4, 8, 12); qr(w, 1, 5, 9, 13); qr(w, 2, 6, 10, 14); qr(w, 3, 7, 11, 15)
        qr(w, 0, 5, 10, 15); qr(w, 1, 6, 11, 12); qr(w, 2, 7, 8, 13); qr(w, 3, 4, 9, 14)
    return struct.pack("<16I", *[(w[i] + st[i]) & 0xFFFFFFFF for i in range(16)])


def hchacha20(key, inp16):
    """HChaCha20: 20 rounds over (constants, key, 16-byte input), no final addition; output is
    words 0-3 and 12-15."""
    w = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    w += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", inp16))
    for _ in range(10):
        qr(w, 0, 4, 8, 12); qr(w, 1, 5, 9, 13); qr(w, 2, 6, 10, 14); qr(w, 3, 7, 11, 15)
        qr(w, 0, 5, 10, 15); qr(w, 1, 6, 11, 12); qr(w, 2, 7, 8, 13); qr(w, 3, 4, 9, 14)
    return struct.pack("<8I", *(w[0:4] + w[12:16]))


def keystream(key, nonce, offset, length):
    out = b""
    block = offset // 64
    skip = offset % 64
    while len(out) < skip + length:
        out += chacha_block(key, block, nonce)
        block += 1
    return out[skip:skip + length]


def pads():
    cases = []
    seeds = [bytes(range(32)), H("vector/seed", b"a"), H("vector/seed", b"b")]
    plan = [
        (0, 0, 64), (0, 1, 3), (1, 3, 70), (7, 5, 200), (2**32, 63, 2), (2**32 + 5, 64, 64),
        (2**40 + 1, 65, 127), (2**64 - 2, 1000, 33), (12345, 4093, 9), (3, 130, 170),
    ]
    for k, (rnd, off, ln) in enumerate(plan):
        seed = seeds[k % len(seeds)]
        cases.append({"seed": seed.hex(), "round": rnd, "offset": off, "len": ln,
                      "pad": keystream(seed, rnd, off, ln).hex()})
    return cases


# --- group_id ---
def group_id():
    name = "vectors"
    members = [("alice", H("vector/key", b"alice")), ("bob", H("vector/key", b"bob")),
               ("carol", H("vector/key", b"carol"))]
    relay = H("vector/key", b"relay")
    params = dict(cells=6, slots=3, slot_bytes=128, p_trap=0.2, p_cover=1.0, keys_ms=5000,
                  commit_ms=2000, reveal_ms=2000, unblind_ms=2000, post_round_ms=0, round_ms=0,
                  max_fragments=1024, tolerance=0)
    roster = struct.pack("<H", len(name)) + name.encode() + u32(len(members))
    for n, k in members:
        roster += struct.pack("<H", len(n)) + n.encode() + k
    roster += relay
    pb = u32(params["cells"]) + u32(params["slots"]) + u32(params["slot_bytes"])
    pb += struct.pack("<d", params["p_trap"]) + struct.pack("<d", params["p_cover"])
    for d in ["keys_ms", "commit_ms", "reveal_ms", "unblind_ms", "post_round_ms", "round_ms"]:
        pb += u64(params[d])
    pb += struct.pack("<H", params["max_fragments"]) + u32(params["tolerance"])
    return {
        "name": name,
        "members": [{"name": n, "key": k.hex()} for n, k in members],
        "relay_key": relay.hex(),
        "params": params,
        "roster_bytes": roster.hex(),
        "params_bytes": pb.hex(),
        "group_id": H("dcnet/v1/group-id", roster, pb).hex(),
    }


def kdf(gid):
    gid = bytes.fromhex(gid)
    epoch = 3
    Ei, Ej, K = H("vector/point", b"i"), H("vector/point", b"j"), H("vector/point", b"K")
    s = H("dcnet/v1/pair-secret", gid, u64(epoch), u32(0), u32(2), Ei, Ej, K)
    keys = [(0, Ei), (1, H("vector/point", b"x")), (2, Ej)]
    joined = b"".join(u32(i) + k for i, k in keys)
    genesis = H("dcnet/v1/view-genesis", gid, u64(epoch), joined)
    steps = []
    view = genesis
    for rnd in [1, 2, 2**32 + 7]:
        open_hash = H("vector/open", u64(rnd))
        view = H("dcnet/v1/view", view, u64(rnd), open_hash)
        steps.append({"round": rnd, "open_hash": open_hash.hex(), "view": view.hex()})
    rnd = 2**32 + 7
    pad_nonce = H("dcnet/v1/pad-nonce", u64(rnd), view)[:16]
    padkey = hchacha20(s, pad_nonce)
    z = H("vector/z", b"z")
    gamma = H("vector/gamma", b"g")
    cleartext = bytes(range(200))
    out = H("dcnet/v1/output", u64(rnd), cleartext)
    body = b"\x02" + bytes(95)
    return {
        "group_id": gid.hex(), "epoch": epoch,
        "pair_secret": {"i": 0, "j": 2, "E_i": Ei.hex(), "E_j": Ej.hex(), "K_ij": K.hex(),
                        "s_ij": s.hex()},
        "view": {"keys": [{"index": i, "key": k.hex()} for i, k in keys],
                 "genesis": genesis.hex(), "steps": steps},
        "pad_key": {"s_ij": s.hex(), "round": rnd, "view": view.hex(),
                    "pad_nonce": pad_nonce.hex(), "key": padkey.hex(),
                    "pad_first_64": keystream(padkey, rnd, 0, 64).hex()},
        # draft-irtf-cfrg-xchacha-03 §2.2.1 test vector, to check the HChaCha20 above.
        "hchacha20_ietf": {"key": bytes(range(32)).hex(),
                           "input": "000000090000004a0000000031415927",
                           "output": hchacha20(bytes(range(32)),
                                               bytes.fromhex("000000090000004a0000000031415927")).hex()},
        "blind_commitment": {"z": z.hex(), "commitment": H("dcnet/v1/blind-commit", z).hex()},
        "footprint_from_gamma": {"gamma": gamma.hex(),
                                 "footprint": H("dcnet/v1/footprint", gamma)[:8].hex()},
        "output_digest": {"round": rnd, "cleartext": cleartext.hex(), "digest": out.hex()},
        "alloc_order": [{"cell": c, "key": H("dcnet/v1/alloc-order", out, u32(c)).hex()}
                        for c in range(3)],
        "slot_hash": {"round": rnd, "slot": 2, "body": body.hex(),
                      "hash": H("dcnet/v1/slot", u64(rnd), u32(2), body).hex()},
    }


CHUNK = 256


def merkle(data):
    leaves = [H("dcnet/v1/merkle-leaf", u32(i), data[i * CHUNK:(i + 1) * CHUNK])
              for i in range(max(1, -(-len(data) // CHUNK)))]
    levels = [leaves]
    while len(levels[-1]) > 1:
        lv = levels[-1]
        nxt = [H("dcnet/v1/merkle-node", lv[i], lv[i + 1]) if i + 1 < len(lv) else lv[i]
               for i in range(0, len(lv), 2)]
        levels.append(nxt)
    root = H("dcnet/v1/merkle-root", u64(len(data)), levels[-1][0])
    return root, levels


def merkle_vectors():
    out = []
    for n in [0, 100, 256, 700, 5 * 256 + 1]:
        data = bytes((i * 31 + 7) % 256 for i in range(n))
        root, levels = merkle(data)
        idx = min(2, len(levels[0]) - 1)
        sib, pos = [], idx
        for lv in levels[:-1]:
            if pos ^ 1 < len(lv):
                sib.append(lv[pos ^ 1].hex())
            pos //= 2
        out.append({"data": data.hex(), "root": root.hex(), "index": idx,
                    "chunk": data[idx * CHUNK:(idx + 1) * CHUNK].hex(), "siblings": sib})
    return out


def main():
    ietf = hchacha20(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927"))
    assert ietf.hex() == ("82413b4227b27bfed30e42508a877d73"
                          "a0f9e4d58a74a853c12ec41326d3ecdc"), "HChaCha20 self-check"
    g = group_id()
    files = {"pads.json": pads(), "group_id.json": g, "kdf.json": kdf(g["group_id"]),
             "merkle.json": merkle_vectors()}
    for name, value in files.items():
        with open(os.path.join(HERE, name), "w") as f:
            json.dump(value, f, indent=1)
            f.write("\n")
        print("wrote", name)


if __name__ == "__main__":
    main()
