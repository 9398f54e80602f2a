#!/usr/bin/env python3
"""Independent check of tests/vectors/transcript.json from docs/PROTOCOL.md alone (Python
standard library; Ed25519, the bincode decoder, ChaCha20, HChaCha20 and Merkle come from
generate.py, Ristretto255 and the slot reader from check_more.py, all written from the spec).

What is checked, for every frame of the run:
  - it decodes exactly per §4 (header, variant index, body, 64-byte signature, no trailing
    bytes); header kind = body variant = the recorded kind; group_id is the group's (§2.2,
    recomputed from the recorded roster and parameters); the sender is the relay on relay→member
    frames and the recorded member on member→relay frames;
  - its signature verifies strictly (§2.10) under the relay key or the sender's roster key, and
    so does every signed message nested in it;
  - its recorded digest is H("dcnet/v1/message"; hb ‖ bb ‖ sig) (the frame without its variant
    index), and every relay message of a round reaches every member of P byte-identical;
and across frames (§5, §8, §2.4–§2.7, §6, §7):
  - the seeds: each identity secret is the RFC 8032 seed of its roster / relay key;
  - EpochRequest invites the roster; EpochKeys holds exactly the EpochKey messages sent, in
    index order; view_genesis and every view_r are recomputed; Open.view_prev = the chain head,
    Open.last = (last completed round, its Record digest), Open.commit_ms = params.commit_ms,
    rounds increase;
  - Commit.open = digest of the Open its member received; Commit.ciphertext = Merkle root
    (§2.9) of its Reveal; Commit.blinding = H("dcnet/v1/blind-commit"; z) of its Unblind;
  - CommitSet.open = the Open's digest and its commits are exactly the Commit messages sent, in
    index order; the Record's CommitSet is the CommitSet sent, its Opens are exactly [the Open
    sent], its xor = the XOR of the Reveals (length L); ZSet.record = the Record's digest, its
    seeds are the Unblinds sent, missing is empty;
  - cleartext = Record.xor ⊕ ⨁ ChaCha20(z_i, round) (§2.6);
  - with the published epoch secrets (dcnet-specific draws, see the file): E_i = e_i·B is the
    EpochKey sent; K_ij = e_i·E_j = e_j·E_i; s_ij, n_r, k_ij,r and every pad (§2.3, §2.5); each
    member's vector m_i = c_i ⊕ b_i ⊕ ⨁ pad_ij holds exactly its footprint (§2.7) in one cell
    and zeros in the others, and in the slots either nothing (no allocation, or no slot won) or,
    in the one slot it won from Open.alloc's round (§6, recomputed from that round's cleartext),
    an intact trap (§7, keyed by its Γ of the reserving round) or an intact fragment;
  - dcnet's RNG draws (the file's "rng_draws", not protocol): from the ChaCha20 keystream of each
    rng_seed, the submitter's msg_id, every e_i, and per round the coin (a won slot holds a trap
    or the fragment as the coin of the reserving round says), the cell m_i's footprint is in,
    and z_i; so the members' frames, too, are reproducible from the file;
  - every slot of every round reads per §7 as empty, trap or fragment where allocated and is
    zero where unallocated (D is empty, §11.1, so no blame case: no blame frame appears);
  - each recorded delivery: the slot of that round is an intact fragment whose payload is the
    delivered message and whose digest is H("dcnet/v1/message-digest"; msg_id, message)[0..16);
    it is the submitted message and was written by its submitter; every member delivered it.
Run: python3 tests/vectors/check_transcript.py [FILE]   (default: transcript.json here)
Exit 1 with what failed, else print the counts.
"""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate as G  # noqa: E402
import check_more as R  # noqa: E402

FAILURES = []
CHECKS = [0]
NOTES = []


def ok(cond, what):
    CHECKS[0] += 1
    if not cond:
        FAILURES.append(what)
    return cond


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


H, u32, u64 = G.H, G.u32, G.u64


def decode_frame(frame):
    """§4: hb ‖ varint(kind − 1) ‖ bb ‖ sig. Returns the parts and the nested messages."""
    r = G.Reader(frame)
    h = G.read_header(r)
    hb_end = r.i
    variant = r.varint()
    b0 = r.i
    kind = G.KINDS[variant]
    found = []
    body = G.read(r, ("struct", G.BODIES[kind]), found)
    bb = frame[b0:r.i]
    sig = r.take(64)
    if r.i != len(frame):
        raise ValueError("trailing bytes")
    if h["kind"] != kind:
        raise ValueError("header kind %s, body variant %s" % (h["kind"], kind))
    hb = frame[:hb_end]
    return {"header": h, "kind": kind, "body": body, "hb": hb, "bb": bb, "sig": sig,
            "message": hb + bb + sig, "nested": found}


def group_id(g):
    p = g["params"]
    roster = struct.pack("<H", len(g["name"])) + g["name"].encode() + u32(len(g["members"]))
    for m in g["members"]:
        roster += struct.pack("<H", len(m["name"])) + m["name"].encode() + bytes.fromhex(m["key"])
    roster += bytes.fromhex(g["relay_key"])
    pb = u32(p["cells"]) + u32(p["slots"]) + u32(p["slot_bytes"])
    pb += struct.pack("<d", p["p_trap"]) + struct.pack("<d", p["p_cover"])
    for d in ["keys_ms", "commit_ms", "reveal_ms", "unblind_ms", "post_round_ms", "round_ms"]:
        pb += u64(p[d])
    pb += struct.pack("<H", p["max_fragments"]) + u32(p["tolerance"]) + u64(p["epoch_rounds"])
    return roster, pb, H("dcnet/v1/group-id", roster, pb)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "transcript.json")
    with open(path) as f:
        t = json.load(f)
    g = t["group"]
    p = g["params"]
    n = len(g["members"])
    cells, slots, sb = p["cells"], p["slots"], p["slot_bytes"]
    L = cells * 8 + slots * sb
    ok(L == g["vector_len"], "L = cells·8 + slots·slot_bytes")
    roster, pb, gid = group_id(g)
    ok(roster.hex() == g["roster_bytes"], "roster bytes (§2.2)")
    ok(pb.hex() == g["params_bytes"], "params bytes (§2.2)")
    ok(gid.hex() == g["group_id"], "group_id (§2.2)")
    relay_key = bytes.fromhex(g["relay_key"])
    keys = [bytes.fromhex(m["key"]) for m in g["members"]]
    ok(G.ed25519_public(bytes.fromhex(t["relay"]["identity_secret"])) == relay_key,
       "relay identity secret is the seed of the relay key")
    for i, m in enumerate(t["members"]):
        ok(G.ed25519_public(bytes.fromhex(m["identity_secret"])) == keys[i],
           "member %d identity secret is the seed of its roster key" % i)

    def signer_key(sender):
        return relay_key if sender == "relay" else keys[sender]

    # ---- every frame on its own
    frames = []  # (step, direction, member, decoded)
    for s in t["steps"]:
        if s["type"] != "frame":
            ok(s["type"] == "timeout", "step %d: frame or timeout" % s["step"])
            continue
        w = "step %d (%s %s, member %d)" % (s["step"], s["direction"], s["kind"], s["member"])
        raw = bytes.fromhex(s["frame"])
        try:
            d = decode_frame(raw)
        except (ValueError, IndexError) as e:
            ok(False, "%s: does not decode per §4: %s" % (w, e))
            continue
        h = d["header"]
        ok(d["kind"] == s["kind"], w + ": kind")
        ok(h["group_id"] == gid, w + ": group_id")
        want_sender = "relay" if s["direction"] == "relay->member" else s["member"]
        ok(h["sender"] == want_sender, w + ": sender")
        if d["kind"] in G.UNSIGNED:
            ok(d["sig"] == bytes(64), w + ": unsigned kind with 64 zero bytes (§2.10)")
        else:
            ok(G.ed25519_verify(signer_key(h["sender"]),
                                H("dcnet/v1/signature", d["hb"], d["bb"]), d["sig"]),
               w + ": signature")
        for nh, nhb, nbb, nsig in d["nested"]:
            ok(nh["group_id"] == gid, w + ": nested group_id")
            ok(G.ed25519_verify(signer_key(nh["sender"]), H("dcnet/v1/signature", nhb, nbb),
                                nsig), w + ": nested %s signature" % nh["kind"])
        ok(H("dcnet/v1/message", d["message"]).hex() == s["digest"], w + ": digest")
        frames.append((s["step"], s["direction"], s["member"], d))

    # ---- group the messages: relay → members (one message per kind and round, to each member
    # of P), members → relay (one per kind, round and member)
    relay_msgs, member_msgs, first_step = {}, {}, {}
    for step, direction, i, d in frames:
        key = (d["kind"], d["header"]["round"])
        if direction == "relay->member":
            prev = relay_msgs.setdefault(key, {"d": d, "to": []})
            ok(prev["d"]["message"] == d["message"],
               "step %d: relay sent the same %s of round %d to everyone" % ((step,) + key))
            prev["to"].append(i)
            first_step.setdefault(("to", i) + key, step)
        else:
            ok((key, i) not in member_msgs, "step %d: one %s per member and round" % (step, key))
            member_msgs[(key, i)] = d
            first_step[("from", i) + key] = step

    def rmsg(kind, rnd):
        return relay_msgs[(kind, rnd)]["d"]

    def nested(d, kind):
        return [nhb + nbb + nsig for nh, nhb, nbb, nsig in d["nested"] if nh["kind"] == kind]

    # ---- epoch 1
    req = rmsg("EpochRequest", 0)
    epoch = req["header"]["epoch"]
    ok(req["body"]["members"] == list(range(n)), "EpochRequest invites the roster")
    ok(sorted(relay_msgs[("EpochRequest", 0)]["to"]) == list(range(n)), "EpochRequest to all")
    ek = rmsg("EpochKeys", 0)
    sent_keys = [member_msgs[(("EpochKey", 0), i)] for i in range(n)]
    ok(nested(ek, "EpochKey") == [k["message"] for k in sent_keys],
       "EpochKeys holds exactly the EpochKey messages sent, in index order")
    E = [k["body"]["key"] for k in sent_keys]
    for i in range(n):
        ok(first_step[("from", i, "EpochKey", 0)] > first_step[("to", i, "EpochRequest", 0)],
           "member %d sent its EpochKey after the EpochRequest reached it" % i)
        ok(R.decode(E[i]) is not None, "E_%d is a canonical Ristretto255 point" % i)
    # Published epoch secrets: E = e·B, pair secrets (§2.3).
    e = []
    for i, m in enumerate(t["members"]):
        es = m["epoch_secret"]
        ok(es["epoch"] == epoch, "epoch secret of member %d is for this epoch" % i)
        ei = int.from_bytes(bytes.fromhex(es["e"]), "little")
        ok(0 < ei < R.L, "e_%d canonical and non-zero" % i)
        ok(R.encode(R.mul(ei, R.B)) == E[i], "E_%d = e_%d·B is the EpochKey sent" % (i, i))
        e.append(ei)
    s_pair = {}
    for i in range(n):
        for j in range(i + 1, n):
            K = R.encode(R.mul(e[i], R.decode(E[j])))
            ok(K == R.encode(R.mul(e[j], R.decode(E[i]))), "K_%d%d = e_i·E_j = e_j·E_i" % (i, j))
            s_pair[(i, j)] = H("dcnet/v1/pair-secret", gid, u64(epoch), u32(i), u32(j), E[i],
                               E[j], K)
    head = H("dcnet/v1/view-genesis", gid, u64(epoch), b"".join(u32(i) + E[i] for i in range(n)))

    # ---- dcnet's member RNG (not protocol; documented in transcript.json "rng_draws"): the
    # ChaCha20 keystream of rng_seed (nonce 0, counter 0), read in order: 8 bytes msg_id per
    # message submitted, 64 bytes w per epoch (e = w mod l), then per accepted Open a u64 coin,
    # a u64 cell draw (cell = u64 mod cells) and 32 bytes z.
    class Stream:
        def __init__(self, seed):
            self.ks, self.i = G.keystream(seed, 0, 0, 4096), 0

        def take(self, k):
            self.i += k
            return self.ks[self.i - k:self.i]

        def u64(self):
            return int.from_bytes(self.take(8), "little")

    rng = [Stream(bytes.fromhex(m["rng_seed"])) for m in t["members"]]
    msg_ids = {}
    for sm in t["submitted"]:
        msg_ids[sm["member"]] = rng[sm["member"]].take(8)
    for i in range(n):
        w64 = int.from_bytes(rng[i].take(64), "little") % R.L
        ok(w64 == e[i], "member %d: e = (64 bytes of its RNG stream) mod l" % i)
    coins = {}

    # ---- rounds
    rounds = sorted(r for (k, r) in relay_msgs if k == "Open")
    ok(rounds == sorted(set(rounds)) and rounds[0] >= 1, "rounds increase")
    last, clear_of, present_of, record_digest, gamma_of = None, {}, {}, {}, {}
    delivered_at = {}
    kc = None  # the epoch's content key, once a completed round fixed it (§8.2)
    for rnd in rounds:
        w = "round %d" % rnd
        op = rmsg("Open", rnd)
        ob = op["body"]
        P = ob["present"]
        present_of[rnd] = P
        open_digest = H("dcnet/v1/message", op["message"])
        ok(sorted(relay_msgs[("Open", rnd)]["to"]) == P, w + ": Open sent to P")
        ok(P == sorted(set(P)) and len(P) >= 2, w + ": P sorted, |P| ≥ 2")
        ok(op["header"]["epoch"] == epoch, w + ": Open epoch")
        ok(ob["view_prev"] == head, w + ": Open.view_prev = chain head (§2.4)")
        ok(ob["last"] == (None if last is None else [last, record_digest[last]]),
           w + ": Open.last = last completed round and its Record digest")
        ok(ob["commit_ms"] == p["commit_ms"], w + ": Open.commit_ms = params.commit_ms")
        ok(ob["voids"] == [] and ob["last_case"] is None, w + ": no voids, no case")
        view = H("dcnet/v1/view", head, u64(rnd), open_digest)
        commits = {i: member_msgs[(("Commit", rnd), i)] for i in P}
        reveals = {i: member_msgs[(("Reveal", rnd), i)] for i in P}
        unblinds = {i: member_msgs[(("Unblind", rnd), i)] for i in P}
        for i in P:
            cb = commits[i]["body"]
            ok(cb["open"] == open_digest, w + ": Commit %d binds the Open's digest" % i)
            c = reveals[i]["body"]["ciphertext"]
            ok(len(c) == L, w + ": Reveal %d has L bytes" % i)
            ok(G.merkle(bytes(c))[0] == cb["ciphertext"],
               w + ": Commit %d ciphertext = Merkle root of its Reveal (§2.9)" % i)
            ok(H("dcnet/v1/blind-commit", unblinds[i]["body"]["z"]) == cb["blinding"],
               w + ": Commit %d blinding = H(z) of its Unblind" % i)
            order = ["Open", "Commit", "CommitSet", "Reveal", "Record", "Unblind", "ZSet"]
            for a, b in zip(order, order[1:]):
                da = "to" if a in relay_kinds else "from"
                db_ = "to" if b in relay_kinds else "from"
                ok(first_step[(db_, i, b, rnd)] > first_step[(da, i, a, rnd)],
                   w + ": member %d: %s after %s" % (i, b, a))
        cs = rmsg("CommitSet", rnd)
        ok(cs["body"]["open"] == open_digest, w + ": CommitSet.open = H(Open)")
        ok(nested(cs, "Commit") == [commits[i]["message"] for i in P],
           w + ": CommitSet holds exactly the Commits sent, in index order")
        rec = rmsg("Record", rnd)
        ok(nested(rec, "CommitSet") == [cs["message"]], w + ": Record's CommitSet is the one sent")
        ok(nested(rec, "Open") == [op["message"]], w + ": Record's Opens = [the Open sent]")
        x = bytes(L)
        for i in P:
            x = xor(x, bytes(reveals[i]["body"]["ciphertext"]))
        ok(bytes(rec["body"]["xor"]) == x, w + ": Record.xor = XOR of the Reveals")
        rd = H("dcnet/v1/message", rec["message"])
        zs = rmsg("ZSet", rnd)
        ok(zs["body"]["record"] == rd, w + ": ZSet.record = H(Record)")
        ok(zs["body"]["seeds"] == [[i, unblinds[i]["body"]["z"]] for i in P],
           w + ": ZSet seeds = the Unblinds sent")
        ok(zs["body"]["missing"] == [], w + ": ZSet.missing empty")
        for kind in ("CommitSet", "Record", "ZSet"):
            ok(sorted(relay_msgs[(kind, rnd)]["to"]) == P, w + ": %s sent to P" % kind)
        # §2.6: cleartext.
        blind = {i: G.keystream(unblinds[i]["body"]["z"], rnd, 0, L) for i in P}
        clear = x
        for i in P:
            clear = xor(clear, blind[i])
        # §2.5 pads and each member's vector m_i.
        nonce = H("dcnet/v1/pad-nonce", u64(rnd), view)[:16]
        pad = {}
        for a in P:
            for b in P:
                if a < b:
                    pad[(a, b)] = pad[(b, a)] = G.keystream(
                        G.hchacha20(s_pair[(a, b)], nonce), rnd, 0, L)
        T = R.from_uniform_bytes(R.H_wide("dcnet/v1/footprint-base", gid, u64(epoch), u64(rnd)))
        alloc = ob["alloc"]
        owners = {}  # slot -> (member, gamma of the reserving round)
        if alloc is not None:
            ra, rdig = alloc
            ok(rdig == record_digest.get(ra), w + ": Open.alloc names a completed Record")
            ok(all(i in P for i in present_of[ra]), w + ": alloc only when P ⊇ P_alloc")
            prev = clear_of[ra]
            out = H("dcnet/v1/output", u64(ra), prev)
            nz = [c for c in range(cells) if any(prev[8 * c:8 * c + 8])]
            if len(nz) <= min(slots, len(present_of[ra])):
                order = sorted((H("dcnet/v1/alloc-order", out, u32(c)), c) for c in nz)
                for sl, (_, c) in enumerate(order):
                    for i in present_of[ra]:
                        gm = gamma_of[(i, ra)]
                        if prev[8 * c:8 * c + 8] == H("dcnet/v1/footprint", gm)[:8]:
                            owners[sl] = (i, gm)
        else:
            ok(last is None or any(i not in P for i in present_of[last]),
               w + ": Open without alloc only when no allocation applies")
        slot_range = lambda sl: range(cells * 8 + sl * sb, cells * 8 + (sl + 1) * sb)  # noqa
        total = bytes(L)
        offered = None
        holder = P[rnd % len(P)]
        for i in P:
            m = xor(bytes(reveals[i]["body"]["ciphertext"]), blind[i])
            for j in P:
                if j != i:
                    m = xor(m, pad[(i, j)])
            total = xor(total, m)
            gm = R.encode(R.mul(e[i], T))
            gamma_of[(i, rnd)] = gm
            fp = H("dcnet/v1/footprint", gm)[:8]
            mine = [c for c in range(cells) if m[8 * c:8 * c + 8] == fp]
            coins[(i, rnd)] = (rng[i].u64() >> 11) / float(1 << 53)
            ok(mine == [rng[i].u64() % cells], w + ": m_%d's cell is its RNG draw" % i)
            ok(rng[i].take(32) == unblinds[i]["body"]["z"], w + ": z_%d is its RNG draw" % i)
            content = commits[i]["body"]["content"]
            if kc is None and i == holder:
                # §8.2: the keyholder's K_c is its next RNG draw, sealed to every other member.
                offered = rng[i].take(32)
                ok(content is not None and content["id"] == H("dcnet/v1/content-id", gid,
                                                              u64(epoch), offered),
                   w + ": keyholder %d names its K_c by kc_id" % i)
                want = [[j, xor(offered, H("dcnet/v1/content-seal", gid, u64(epoch), u64(rnd),
                                           u32(i), u32(j), s_pair[(min(i, j), max(i, j))]))]
                        for j in P if j != i]
                ok(content is not None and [[j, bytes(x)] for j, x in content["seals"]] == want,
                   w + ": keyholder %d seals K_c to each other member of P" % i)
            else:
                ok(content is None, w + ": Commit %d carries no seal (not the keyholder)" % i)
            ok(len(mine) == 1 and all(not any(m[8 * c:8 * c + 8]) for c in range(cells)
                                      if c not in mine),
               w + ": m_%d holds its footprint in exactly one cell, zeros elsewhere" % i)
            for sl in range(slots):
                b = m[slot_range(sl).start:slot_range(sl).stop]
                if sl in owners and owners[sl][0] == i and kc is None:
                    ok(not any(b), w + ": m_%d leaves its slot empty without a content key" % i)
                elif sl in owners and owners[sl][0] == i:
                    kind = R.parse(sb, rnd, sl, b, kc)
                    NOTES.append("round %d: member %d won slot %d and wrote a %s"
                                 % (rnd, i, sl, kind))
                    coin = coins[(i, alloc[0])]
                    if i in msg_ids:
                        ok(kind == ("trap" if coin < p["p_trap"] else "fragment"),
                           w + ": m_%d slot content follows its coin (p_trap)" % i)
                    else:
                        ok(kind == "trap" and coin < p["p_cover"],
                           w + ": idle m_%d covers with a trap (p_cover)" % i)
                    if kind == "trap":
                        ok(b == R.trap_slot(sb, owners[sl][1], rnd, sl, kc)[1],
                           w + ": m_%d slot %d is its trap (§7)" % (i, sl))
                    else:
                        ok(kind == "fragment", w + ": m_%d fills its slot %d" % (i, sl))
                else:
                    ok(not any(b), w + ": m_%d leaves slot %d (not its own) zero" % (i, sl))
        ok(total == clear, w + ": ⨁ m_i = cleartext (pads cancel)")
        # §7 / §11.1: every slot reads cleanly; D is empty.
        for sl in range(slots):
            b = clear[slot_range(sl).start:slot_range(sl).stop]
            kind = R.parse(sb, rnd, sl, b, kc) if kc is not None else R.state(rnd, sl, b)
            ok(R.state(rnd, sl, b) in ("empty", "intact"), w + ": slot %d intact without a key" % sl)
            if sl in owners:
                ok(kind in ("empty", "trap", "fragment"), w + ": slot %d not damaged" % sl)
            else:
                ok(kind == "empty", w + ": unallocated slot %d is zero" % sl)
            if kind == "fragment":
                delivered_at[(rnd, sl)] = (R.encrypt(kc, rnd, sl, b[:-32]) + b[-32:], owners[sl][0])
        clear_of[rnd], record_digest[rnd] = clear, rd
        if kc is None and offered is not None:
            kc = offered
        last, head = rnd, view

    # ---- deliveries
    sub = t["submitted"]
    ok(len(sub) == 1, "one message submitted")
    want = bytes.fromhex(sub[0]["hex"])
    ok(want == sub[0]["text"].encode(), "submitted text = hex")
    ok(len(t["delivered"]) == n, "a delivery list per member")
    for i, dl in enumerate(t["delivered"]):
        ok(len(dl) == 1, "member %d delivered one message" % i)
        for d in dl:
            msg = bytes.fromhex(d["hex"])
            ok(msg == want, "member %d delivered the submitted message" % i)
            ok(d["text"] == sub[0]["text"], "member %d delivered text" % i)
            got = delivered_at.get((d["round"], d["slot"]))
            if not ok(got is not None, "member %d: round %d slot %d holds a fragment"
                      % (i, d["round"], d["slot"])):
                continue
            b, owner = got
            body = b[:-32]
            msg_id, digest = body[1:9], body[9:25]
            ok(msg_id == msg_ids.get(owner), "msg_id is the submitter's first RNG draw")
            index, count, ln = struct.unpack("<HHH", body[25:31])
            ok((index, count) == (0, 1), "one fragment, index 0")
            ok(body[31:31 + ln] == msg, "the fragment's payload is the delivered message")
            ok(not any(body[31 + ln:]), "zero padding after the payload")
            ok(H("dcnet/v1/message-digest", msg_id, msg)[:16] == digest,
               "fragment digest = H(message-digest; msg_id, message)[0..16)")
            ok(owner == sub[0]["member"], "the slot was won and written by the submitter")
    ok(len(delivered_at) == 1, "exactly one fragment in the whole run")
    kinds = {d["kind"] for _, _, _, d in frames}
    ok(kinds <= set(relay_kinds) | {"EpochKey", "Commit", "Reveal", "Unblind"},
       "only epoch and round messages (no Abort, no blame)")

    for note in NOTES:
        print(note)
    for f in FAILURES:
        print("FAIL", f)
    if FAILURES:
        print("check_transcript.py: %d of %d checks failed" % (len(FAILURES), CHECKS[0]))
        return 1
    print("check_transcript.py: all %d checks hold (%d frames, rounds %s, pads and m_i of "
          "every member recomputed)" % (CHECKS[0], len(frames), rounds))
    return 0


relay_kinds = ["EpochRequest", "EpochKeys", "Open", "CommitSet", "Record", "ZSet"]

if __name__ == "__main__":
    sys.exit(main())
