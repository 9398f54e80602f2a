#!/usr/bin/env python3
"""Independent check of tests/vectors/evidence.json from docs/PROTOCOL.md alone (§2.1, §2.2,
§2.10, §4, §11.8), with Python's standard library only. It imports the hash framing, the
Ed25519 verifier (RFC 8032, strict as §2.10 says) and the bincode 2 `standard()` decoder of §4
from generate.py next to it; the Case and GroupData layouts of §11.8 are written out here.

For every bundle it checks:
  - the layout "dcnetEv1" || bincode(Case) || H("dcnet/v1/evidence"; "dcnetEv1" || bincode(Case))
    (the corrupt vector must fail here, with a checksum mismatch);
  - that bincode(Case) decodes exactly, per §11.8 and §4 (no trailing byte, minimal varints,
    integers within their widths, Option tags 0/1, UTF-8 names), and that the Case fields
    present are the ones the vector lists;
  - GroupData: the group and member names' lengths (§2.2), resolved parameters, and
    group_id recomputed from it (§2.2) equal to the vector's group_id, to the group_id in the
    group file's comment and to the group_id in every signed header of the bundle; the group
    file (TOML, read with tomllib where available) names the same roster, relay key and
    parameters;
  - every signed message in the bundle, nested ones included (each EpochKey, Commit, Open,
    Accuse, Disclose, KeyReveal), verifies under its signer's key: the relay key for
    Sender::Relay, roster key i for Sender::Member(i) (i inside the roster);
  - the digests that bind the messages together (§2.10, §5, §11): the ZSet and BlameStart name
    H(Record), every commitment binds an Open the Record lists, the Open's `alloc` names the
    allocating Record, a Disclose names H(BlameStart), a RevealSet and its KeyReveals name
    H(DisclosureSet);
  - a little of the verdict: its round is the round of the bundle's Record (or of the two
    commitments); member-equivocation: two different commitments by the culprit for one
    (epoch, round); relay-equivocation: the Record lists two different relay-signed Opens of
    its round; unresolved: the unresponsive members are the DisclosureSet's `missing`.
The other verdicts (pad arithmetic, byte checks) need Ristretto255 and ChaCha20 and are judged
by the Rust code only; tests/vectors/check_more.py checks those primitives.

Run: python3 tests/vectors/check_evidence.py   (exit 1 and what failed otherwise)
"""
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from generate import H, Reader, read, ed25519_verify  # noqa: E402

try:
    import tomllib
except ImportError:  # Python < 3.11: the group file is then compared only by its group_id
    tomllib = None

MAGIC = b"dcnetEv1"
U16, U32, U64 = ("uint", 16), ("uint", 32), ("uint", 64)

# §11.8: Case, in field order. GroupData is read by read_group below (it holds strings and
# floats, which no message does).
CASE = [
    ("epoch_keys", ("signed", "EpochKeys")),
    ("record", ("option", ("signed", "Record"))),
    ("zset", ("option", ("signed", "ZSet"))),
    ("alloc", ("option", ("tuple", [("signed", "Record"), ("signed", "ZSet")]))),
    ("disclosure", ("option", ("signed", "DisclosureSet"))),
    ("start", ("option", ("signed", "BlameStart"))),
    ("reveals", ("option", ("signed", "RevealSet"))),
    ("equivocation", ("option", ("tuple", [("signed", "Commit"), ("signed", "Commit")]))),
]
PARAMS = [("cells", U32), ("slots", U32), ("slot_bytes", U32), ("p_trap", "f64"),
          ("p_cover", "f64"), ("keys_ms", U64), ("commit_ms", U64), ("reveal_ms", U64),
          ("unblind_ms", U64), ("post_round_ms", U64), ("round_ms", U64),
          ("max_fragments", U16), ("tolerance", U32), ("epoch_rounds", U64)]


def read_string(r):
    n = r.varint()
    return r.take(n).decode("utf-8")  # strict: invalid UTF-8 raises


def read_group(r):
    """GroupData { name: String, members: Vec<(String, [u8;32])>, relay: [u8;32],
    params: RoundParams }; String = varint(len) || UTF-8, f64 = 8 bytes little-endian."""
    g = {"name": read_string(r), "members": []}
    for _ in range(r.varint()):
        g["members"].append((read_string(r), r.take(32)))
    g["relay"] = r.take(32)
    p = {}
    for name, t in PARAMS:
        p[name] = struct.unpack("<d", r.take(8))[0] if t == "f64" else read(r, t, [])
    g["params"] = p
    return g


def group_id(g):
    """§2.2."""
    name = g["name"].encode()
    roster = struct.pack("<H", len(name)) + name + struct.pack("<I", len(g["members"]))
    for n, k in g["members"]:
        n = n.encode()
        roster += struct.pack("<H", len(n)) + n + k
    roster += g["relay"]
    p = g["params"]
    pb = struct.pack("<III", p["cells"], p["slots"], p["slot_bytes"])
    pb += struct.pack("<dd", p["p_trap"], p["p_cover"])
    for d in ["keys_ms", "commit_ms", "reveal_ms", "unblind_ms", "post_round_ms", "round_ms"]:
        pb += struct.pack("<Q", p[d])
    pb += struct.pack("<HIQ", p["max_fragments"], p["tolerance"], p["epoch_rounds"])
    return H("dcnet/v1/group-id", roster, pb)


def digests(found):
    """§2.10: digest(m) = H("dcnet/v1/message"; hb || bb || sig) of every message read. The
    decoder returns each signed message's header object and lists the same object in `found`
    with the message's bytes, so a message is looked up by its header."""
    by_header = {id(h): H("dcnet/v1/message", hb + bb + sig) for h, hb, bb, sig in found}
    return lambda m: by_header[id(m["header"])]


def read_case(body):
    r = Reader(body)
    found = []
    case = {"group": read_group(r)}
    for name, t in CASE:
        case[name] = read(r, t, found)
    if r.i != len(body):
        raise ValueError("%d trailing bytes after the Case" % (len(body) - r.i))
    return case, found


def check_vector(v, fail):
    name = v["name"]
    b = bytes.fromhex(v["bundle"])
    if len(b) < 8 + 32 or b[:8] != MAGIC:
        return fail(name, "missing dcnetEv1 header")
    body, check = b[:-32], b[-32:]
    if H("dcnet/v1/evidence", body) != check:
        if v["valid"]:
            fail(name, "checksum mismatch")
        elif "checksum" not in v["error"]:
            fail(name, "refused for a checksum mismatch, the vector says: " + v["error"])
        return
    if not v["valid"]:
        return fail(name, "a corrupt bundle passes the checksum")
    try:
        case, found = read_case(body[8:])
    except (ValueError, UnicodeDecodeError) as e:
        return fail(name, "Case does not decode per §11.8/§4: %s" % e)
    present = [f for f, _ in CASE[1:] if case[f] is not None]
    if present != v["case_fields"]:
        fail(name, "Case fields %s, the vector says %s" % (present, v["case_fields"]))
    g = case["group"]
    if not 1 <= len(g["name"].encode()) <= 256 or not all(
            1 <= len(n.encode()) <= 64 for n, _ in g["members"]):
        fail(name, "group or member name length outside §2.2's bounds")
    p = g["params"]
    if p["cells"] == 0 or p["slots"] == 0:
        fail(name, "parameters not resolved (§3)")
    gid = group_id(g)
    if gid.hex() != v["group_id"]:
        fail(name, "group_id of the bundle's GroupData differs from the vector's")
    m = re.search(r"group_id = ([0-9a-f]{64})", v["group_toml"])
    if not m or m.group(1) != gid.hex():
        fail(name, "group file comment names another group_id")
    if tomllib is not None:
        t = tomllib.loads(v["group_toml"])
        if (t["name"], t["relay_key"], [(x["name"], x["key"]) for x in t["member"]]) != (
                g["name"], g["relay"].hex(), [(n, k.hex()) for n, k in g["members"]]):
            fail(name, "the group file's roster differs from the bundle's")
        if {k: t["params"][k] for k, _ in PARAMS} != p:
            fail(name, "the group file's parameters differ from the bundle's")
    # Every signed message verifies under its signer's key.
    keys = [k for _, k in g["members"]]
    for h, hb, bb, sig in found:
        if h["group_id"] != gid:
            fail(name, "%s of another group" % h["kind"])
        s = h["sender"]
        if s == "relay":
            pub = g["relay"]
        elif s < len(keys):
            pub = keys[s]
        else:
            fail(name, "%s from member %d outside the roster" % (h["kind"], s))
            continue
        if not ed25519_verify(pub, H("dcnet/v1/signature", hb, bb), sig):
            fail(name, "%s signed by %s does not verify" % (h["kind"], s))
    check_links(name, case, found, v, fail)
    return len(found)


def check_links(name, case, found, v, fail):
    digest = digests(found)
    verdict = v["verdict"]
    eq = case["equivocation"]
    if eq is not None:
        a, b = eq
        same = (a["header"]["sender"] == b["header"]["sender"]
                and a["header"]["epoch"] == b["header"]["epoch"]
                and a["header"]["round"] == b["header"]["round"])
        if not same or a["body"] == b["body"]:
            fail(name, "not two different commitments by one member for one round")
        if verdict["rule"] == "member-equivocation" and (
                verdict["culprit"] != a["header"]["sender"]
                or verdict["round"] != a["header"]["round"]):
            fail(name, "member-equivocation verdict does not name the signer and round")
        return
    rec = case["record"]
    if rec is None:
        return fail(name, "neither a Record nor an equivocation")
    rnd = rec["header"]["round"]
    if verdict["round"] != rnd:
        fail(name, "verdict round %d, Record of round %d" % (verdict["round"], rnd))
    listed = rec["body"]["opens"]
    if not listed or any(o["header"]["round"] != rnd for o in listed):
        fail(name, "the Record lists no Open, or one of another round")
        return
    opens = {digest(o) for o in listed}
    if verdict["rule"] == "relay-equivocation":
        if len(opens) < 2 or verdict["culprit"] != "relay":
            fail(name, "relay-equivocation without two different Opens, or not the relay")
        return
    rdig = digest(rec)
    if case["zset"] is None or case["zset"]["body"]["record"] != rdig:
        fail(name, "the ZSet does not name H(Record)")
    cs = rec["body"]["commit_set"]
    if not all(c["body"]["open"] in opens and c["body"]["open"] == cs["body"]["open"]
               for c in cs["body"]["commits"]):
        fail(name, "a commitment binds an Open the Record does not list")
    alloc = listed[0]["body"]["alloc"]
    if alloc is not None:
        if case["alloc"] is None:
            fail(name, "the Open allocates from a round the bundle lacks")
        else:
            arec, azset = case["alloc"]
            if alloc != [arec["header"]["round"], digest(arec)]:
                fail(name, "Open.alloc does not name the allocating Record")
            if azset["body"]["record"] != digest(arec):
                fail(name, "the allocating ZSet does not name its Record")
    ds = case["disclosure"]
    start = ds["body"]["start"] if ds is not None else case["start"]
    if start is None:
        return fail(name, "no BlameStart")
    if start["body"]["record"] != rdig:
        fail(name, "the BlameStart does not name H(Record)")
    if ds is None:
        return
    sdig = digest(start)
    if any(d["body"]["start"] != sdig for d in ds["body"]["disclosures"]):
        fail(name, "a Disclose names another BlameStart")
    if verdict["rule"] == "unresolved" and verdict["unresponsive"] != ds["body"]["missing"]:
        fail(name, "unresolved: unresponsive differs from the DisclosureSet's missing")
    rs = case["reveals"]
    if rs is not None:
        sd = digest(ds)
        if rs["body"]["set"] != sd or any(k["body"]["set"] != sd for k in rs["body"]["reveals"]):
            fail(name, "a RevealSet or KeyReveal names another DisclosureSet")


def main():
    with open(os.path.join(HERE, "evidence.json")) as f:
        vectors = json.load(f)["vectors"]
    failures = []

    def fail(what, why):
        failures.append("%s: %s" % (what, why))

    signatures = 0
    for v in vectors:
        signatures += check_vector(v, fail) or 0
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print("ok: %d evidence vectors (%d valid bundles, %d signatures verified, the corrupt one "
          "refused)" % (len(vectors), sum(v["valid"] for v in vectors), signatures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
