#!/usr/bin/env python3
"""Known-answer vectors for dcnet, computed from docs/PROTOCOL.md with Python's standard library
only (hashlib SHA3 and a ChaCha20 written out below), independently of the Rust code.

Writes pads.json, group_id.json, kdf.json and merkle.json next to this file. The vectors that
need Ristretto255 (epoch keys, footprints, DLEQ proofs, a complete round) are written by the
Rust test `regenerate_ristretto_vectors` (cargo test --release --test vectors -- --ignored).

Run: python3 tests/vectors/generate.py           (writes the files above)
     python3 tests/vectors/generate.py --check   (checks every file, wire.json included, from
                                                  the spec; exit 1 and what failed otherwise)

wire.json (written by the Rust test `regenerate_wire_vectors`) is checked here from §2.1,
§2.10 and §4 alone: Ed25519 (RFC 8032, written out below), the hash framing, the frame layout
and a bincode 2 `standard()` decoder built from §4's type table.
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
                  max_fragments=1024, tolerance=0, epoch_rounds=1000)
    roster = struct.pack("<H", len(name)) + name.encode() + u32(len(members))
    for n, k in members:
        roster += struct.pack("<H", len(n)) + n.encode() + k
    roster += relay

    def params_bytes(q):
        pb = u32(q["cells"]) + u32(q["slots"]) + u32(q["slot_bytes"])
        pb += struct.pack("<d", q["p_trap"]) + struct.pack("<d", q["p_cover"])
        for d in ["keys_ms", "commit_ms", "reveal_ms", "unblind_ms", "post_round_ms", "round_ms"]:
            pb += u64(q[d])
        return (pb + struct.pack("<H", q["max_fragments"]) + u32(q["tolerance"])
                + u64(q["epoch_rounds"]))

    pb = params_bytes(params)
    # §2.2: parameters are hashed resolved: slots 0 → N, cells 0 → 2N, tolerance 0xFFFFFFFF →
    # N − max(2, ⌈N/2⌉).
    n = len(members)
    unresolved = dict(params, cells=0, slots=0, tolerance=0xFFFFFFFF)
    resolved = dict(unresolved, cells=2 * n, slots=n,
                    tolerance=n - max(2, (n + 1) // 2))
    rb = params_bytes(resolved)
    return {
        "name": name,
        "members": [{"name": n, "key": k.hex()} for n, k in members],
        "relay_key": relay.hex(),
        "params": params,
        "roster_bytes": roster.hex(),
        "params_bytes": pb.hex(),
        "group_id": H("dcnet/v1/group-id", roster, pb).hex(),
        "unresolved": {"params": unresolved, "resolved": resolved,
                       "params_bytes": rb.hex(),
                       "group_id": H("dcnet/v1/group-id", roster, rb).hex()},
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


# --- Ed25519 (RFC 8032 §5.1, after its §6 reference code), for checking wire.json ---
ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def _ed_add(P, Q):
    A = (P[1] - P[0]) * (Q[1] - Q[0]) % ED_P
    B = (P[1] + P[0]) * (Q[1] + Q[0]) % ED_P
    C = 2 * P[3] * Q[3] * ED_D % ED_P
    D = 2 * P[2] * Q[2] % ED_P
    E, F, G, Hh = B - A, D - C, D + C, B + A
    return (E * F % ED_P, G * Hh % ED_P, F * G % ED_P, E * Hh % ED_P)


def _ed_mul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = _ed_add(Q, P)
        P = _ed_add(P, P)
        s >>= 1
    return Q


def _ed_eq(P, Q):
    return ((P[0] * Q[2] - Q[0] * P[2]) % ED_P == 0
            and (P[1] * Q[2] - Q[1] * P[2]) % ED_P == 0)


def _ed_recover_x(y, sign):
    if y >= ED_P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P
    if (x * x - x2) % ED_P != 0:
        return None
    if (x & 1) != sign:
        x = ED_P - x
    return x


ED_G_Y = 4 * pow(5, ED_P - 2, ED_P) % ED_P
ED_G = (_ed_recover_x(ED_G_Y, 0), ED_G_Y, 1, _ed_recover_x(ED_G_Y, 0) * ED_G_Y % ED_P)


def _ed_compress(P):
    zinv = pow(P[2], ED_P - 2, ED_P)
    x, y = P[0] * zinv % ED_P, P[1] * zinv % ED_P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _ed_decompress(b):
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _ed_recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % ED_P)


def ed25519_public(seed):
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return _ed_compress(_ed_mul(a, ED_G))


def ed25519_verify(public, msg, sig):
    """Strict verification (§2.10): canonical S, canonical A and R encodings, no small-order
    A or R, and the cofactorless equation [S]B = R + [k]A."""
    if len(public) != 32 or len(sig) != 64:
        return False
    A, R = _ed_decompress(public), _ed_decompress(sig[:32])
    if A is None or R is None:
        return False
    if _ed_compress(A) != public or _ed_compress(R) != sig[:32]:
        return False
    for P in (A, R):
        if _ed_eq(_ed_mul(8, P), (0, 1, 1, 0)):
            return False
    s = int.from_bytes(sig[32:], "little")
    if s >= ED_L:
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % ED_L
    return _ed_eq(_ed_mul(s, ED_G), _ed_add(R, _ed_mul(k, A)))


# --- bincode 2 `standard()` as §4 describes it, and the message types of §4 and §11 ---
class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise ValueError("truncated")
        out = self.b[self.i:self.i + n]
        self.i += n
        return out

    def varint(self):
        t = self.take(1)[0]
        if t < 251:
            return t
        n = {251: 2, 252: 4, 253: 8, 254: 16}.get(t)
        if n is None:
            raise ValueError("bad varint tag")
        v = int.from_bytes(self.take(n), "little")
        if v < {2: 251, 4: 1 << 16, 8: 1 << 32, 16: 1 << 64}[n]:
            raise ValueError("non-minimal varint")
        return v


def enc_varint(v):
    if v < 251:
        return bytes([v])
    if v < 1 << 16:
        return b"\xfb" + v.to_bytes(2, "little")
    if v < 1 << 32:
        return b"\xfc" + v.to_bytes(4, "little")
    return b"\xfd" + v.to_bytes(8, "little")


KINDS = ["EpochRequest", "EpochKey", "EpochKeys", "Open", "Commit", "CommitSet", "Reveal",
         "Record", "Unblind", "ZSet", "Abort", "Accuse", "BlameStart", "Disclose",
         "DisclosureSet", "KeyReveal", "RevealSet", "Evidence", "Hello"]
UNSIGNED = ("Reveal", "Unblind")  # §2.10: all-zero signature, never verified
DLEQ = ("struct", [("c", ("bytes", 32)), ("s", ("bytes", 32))])
HASH = ("bytes", 32)
U32, U64, U8 = ("uint", 32), ("uint", 64), ("u8",)


def signed(t):
    return ("signed", t)


BODIES = {
    "EpochRequest": [("members", ("vec", U32)), ("last_case", ("option", HASH))],
    "EpochKey": [("key", ("bytes", 32))],
    "EpochKeys": [("keys", ("vec", signed("EpochKey")))],
    "Open": [("view_prev", HASH), ("present", ("vec", U32)),
             ("last", ("option", ("tuple", [U64, HASH]))),
             ("alloc", ("option", ("tuple", [U64, HASH]))), ("voids", ("vec", U32)),
             ("commit_ms", U64), ("last_case", ("option", HASH))],
    "Commit": [("open", HASH), ("ciphertext", HASH), ("blinding", HASH),
               ("content", ("option", ("struct", [
                   ("id", HASH), ("seals", ("vec", ("tuple", [U32, ("bytes", 32)])))])))],
    "CommitSet": [("open", HASH), ("commits", ("vec", signed("Commit")))],
    "Reveal": [("ciphertext", ("vec", U8))],
    "Record": [("commit_set", signed("CommitSet")), ("opens", ("vec", signed("Open"))),
               ("xor", ("vec", U8))],
    "Unblind": [("z", ("bytes", 32))],
    "ZSet": [("record", HASH), ("seeds", ("vec", ("tuple", [U32, ("bytes", 32)]))),
             ("missing", ("vec", U32))],
    "Abort": [("missing", ("vec", U32)), ("phase", U8)],
    "Accuse": [("record", HASH), ("slot", U32), ("alloc_round", U64), ("cell", U32),
               ("gamma", ("bytes", 32)), ("proof", DLEQ), ("slot_key", ("bytes", 32))],
    "BlameStart": [("record", HASH), ("accusation", ("option", signed("Accuse"))),
                   ("positions", ("vec", U64))],
    "Disclose": [("start", HASH),
                 ("bytes", ("vec", ("struct", [
                     ("position", U64), ("pads", ("vec", ("tuple", [U32, U8]))),
                     ("chunk", ("vec", U8)),
                     ("proof", ("struct", [("index", U32), ("siblings", ("vec", HASH))]))]))),
                 ("claim", ("option", ("struct", [("cell", U32), ("gamma", ("bytes", 32)),
                                                  ("proof", DLEQ)])))],
    "DisclosureSet": [("start", signed("BlameStart")),
                      ("disclosures", ("vec", signed("Disclose"))), ("missing", ("vec", U32))],
    "KeyReveal": [("set", HASH), ("other", U32), ("shared", ("bytes", 32)), ("proof", DLEQ)],
    "RevealSet": [("set", HASH), ("reveals", ("vec", signed("KeyReveal")))],
    "Evidence": [("commits", ("tuple", [signed("Commit"), signed("Commit")]))],
    "Hello": [("protocol", U32), ("high_water", U64), ("epoch", U64), ("last_case", ("option", HASH))],
}


def read_header(r):
    h = {"group_id": r.take(32), "epoch": r.varint(), "round": r.varint()}
    tag = r.varint()
    if tag == 0:
        h["sender"] = "relay"
    elif tag == 1:
        h["sender"] = r.varint()
    else:
        raise ValueError("bad sender")
    k = r.varint()
    if k >= len(KINDS):
        raise ValueError("bad kind")
    h["kind"] = KINDS[k]
    return h


def read(r, t, found):
    """Decodes a value of type t; nested signed messages go to `found` (checked later)."""
    k = t[0]
    if k == "bytes":
        return r.take(t[1])
    if k == "u8":
        return r.take(1)[0]
    if k == "uint":
        v = r.varint()
        if v >= 1 << t[1]:
            raise ValueError("integer too large")
        return v
    if k == "vec":
        return [read(r, t[1], found) for _ in range(r.varint())]
    if k == "option":
        tag = r.take(1)[0]
        if tag > 1:
            raise ValueError("bad option tag")
        return read(r, t[1], found) if tag else None
    if k in ("tuple",):
        return [read(r, x, found) for x in t[1]]
    if k == "struct":
        return {name: read(r, x, found) for name, x in t[1]}
    if k == "signed":
        start = r.i
        h = read_header(r)
        if h["kind"] != t[1]:
            raise ValueError("nested kind mismatch")
        b0 = r.i
        body = read(r, ("struct", BODIES[t[1]]), found)
        body_bytes = r.b[b0:r.i]
        sig = r.take(64)
        found.append((h, r.b[start:b0], body_bytes, sig))
        return {"header": h, "body": body}
    raise ValueError("unknown type " + repr(t))


def check_wire(fail):
    with open(os.path.join(HERE, "wire.json")) as f:
        vectors = json.load(f)
    keys = {}
    for v in vectors:
        seed, pub = bytes.fromhex(v["seed"]), bytes.fromhex(v["public_key"])
        if ed25519_public(seed) != pub:
            fail(v["kind"], "public key does not match its seed")
        sender = v["header_fields"]["sender"]
        keys[sender] = pub
    if sorted(v["kind"] for v in vectors) != sorted(KINDS):
        fail("wire.json", "not one vector per kind")
    for v in vectors:
        kind = v["kind"]
        hb, body = bytes.fromhex(v["header"]), bytes.fromhex(v["body"])
        sig, frame = bytes.fromhex(v["signature"]), bytes.fromhex(v["frame"])
        if kind in UNSIGNED:
            # §2.10: Reveal and Unblind travel unsigned: 64 zero bytes, nothing signed.
            if sig != bytes(64) or v["signed_bytes"] is not None:
                fail(kind, "an unsigned kind must carry 64 zero bytes and sign nothing")
        else:
            signed_bytes = H("dcnet/v1/signature", hb, body)
            if signed_bytes.hex() != v["signed_bytes"]:
                fail(kind, "signed_bytes != H(signature tag; header, body)")
            if not ed25519_verify(bytes.fromhex(v["public_key"]), signed_bytes, sig):
                fail(kind, "signature does not verify")
        if frame != hb + enc_varint(KINDS.index(kind)) + body + sig:
            fail(kind, "frame != header || varint(kind index) || body || sig")
        if H("dcnet/v1/message", hb + body + sig).hex() != v["digest"]:
            fail(kind, "digest != H(message tag; header || body || sig)")
        # Decode the whole frame as §4 describes it.
        r = Reader(frame)
        found = []
        try:
            h = read_header(r)
            variant = r.varint()
            if KINDS[variant] != kind or h["kind"] != kind:
                fail(kind, "kind in header / body variant")
            read(r, ("struct", BODIES[kind]), found)
            r.take(64)
            if r.i != len(frame):
                fail(kind, "trailing bytes after the frame")
        except (ValueError, IndexError) as e:
            fail(kind, "frame does not decode per §4: %s" % e)
            continue
        hf = v["header_fields"]
        if (h["group_id"].hex(), h["epoch"], h["round"], h["sender"]) != (
                hf["group_id"], hf["epoch"], hf["round"], hf["sender"]):
            fail(kind, "decoded header differs from header_fields")
        if frame[:len(hb)] != hb:
            fail(kind, "header bytes")
        # Every nested signed message verifies under its signer's key.
        for nh, nhb, nbody, nsig in found:
            pub = keys.get(nh["sender"])
            if pub is None or not ed25519_verify(pub, H("dcnet/v1/signature", nhb, nbody), nsig):
                fail(kind, "nested %s signature does not verify" % nh["kind"])
    return len(vectors)


def check():
    failures = []

    def fail(what, why):
        failures.append("%s: %s" % (what, why))

    g = group_id()
    expect = {"pads.json": pads(), "group_id.json": g, "kdf.json": kdf(g["group_id"]),
              "merkle.json": merkle_vectors()}
    for name, value in expect.items():
        with open(os.path.join(HERE, name)) as f:
            if json.load(f) != json.loads(json.dumps(value)):
                fail(name, "differs from what the spec gives")
    n = check_wire(fail)
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print("ok: pads, group_id, kdf, merkle and %d wire vectors hold" % n)
    return 0


def main():
    import sys
    if "--check" in sys.argv[1:]:
        sys.exit(check())
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
