//! Evidence-bundle vectors (tests/vectors/evidence.json, docs/PROTOCOL.md §11.8): one bundle
//! per rule a seeded in-memory run convicts with, one `unresolved` bundle, and one corrupted
//! bundle that must be refused. Written by the ignored `regenerate_evidence_vectors`; checked
//! here with the library (`blame::decode_evidence` + `blame::judge`), with the binary
//! (`dcnet verify-evidence --group`), and by tests/vectors/check_evidence.py (Python, from the
//! spec alone).

mod common;

#[path = "common/python.rs"]
mod python;

use common::params;
use dcnet::adversary::{MemberFault, RelayFault};
use dcnet::config::GroupFile;
use dcnet::params::{Group, RoundParams};
use dcnet::protocol::MemberEvent;
use dcnet::protocol::blame::{self, Case, Culprit, Verdict};
use dcnet::sim::{LinkModel, Network, TestGroup};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Seed of the group's keys (`TestGroup::new`), the same for every vector: one group file.
const GROUP_SEED: u64 = 7;
/// Members in the group.
const N: usize = 4;

fn vector_path() -> String {
    format!("{}/tests/vectors/evidence.json", env!("CARGO_MANIFEST_DIR"))
}

fn group_params() -> RoundParams {
    RoundParams {
        p_trap: 0.5,
        ..params(96)
    }
}

/// One scenario: name, what the faults are, the faults, and the rule its bundle must carry.
struct Scenario {
    rule: &'static str,
    what: &'static str,
    relay: Vec<RelayFault>,
    members: Vec<(u32, Vec<MemberFault>)>,
}

fn scenarios() -> Vec<Scenario> {
    let jam = || MemberFault::JamSlots { rate: 1.0 };
    vec![
        Scenario {
            rule: "ciphertext-mismatch",
            what: "member 3 flips bits in other members' slots every round",
            relay: vec![],
            members: vec![(3, vec![jam()])],
        },
        Scenario {
            rule: "pad-lie",
            what: "member 3 jams slots and misreports its pad bytes when it discloses",
            relay: vec![],
            members: vec![(3, vec![jam(), MemberFault::LiePads])],
        },
        Scenario {
            rule: "false-accusation",
            what: "member 3 accuses without a hit trap, while member 2 jams (damage to lie about)",
            relay: vec![],
            members: vec![(2, vec![jam()]), (3, vec![MemberFault::FalseAccuse])],
        },
        Scenario {
            rule: "garbage-cell",
            what: "member 3 writes garbage into every reservation cell but its own (cell check)",
            relay: vec![],
            members: vec![(3, vec![MemberFault::JamEmptyCells])],
        },
        Scenario {
            rule: "member-equivocation",
            what: "member 3 signs two different commitments for each round",
            relay: vec![],
            members: vec![(3, vec![MemberFault::Equivocate])],
        },
        Scenario {
            rule: "record-mismatch",
            what: "the relay XORs 0x5a into byte 5 of slot 0 of every Record",
            relay: vec![RelayFault::Tamper {
                offset: None,
                mask: 0x5a,
            }],
            members: vec![],
        },
        Scenario {
            rule: "relay-equivocation",
            what: "the relay shows member 0 a different signed Open for every round",
            relay: vec![RelayFault::Equivocate { victim: 0 }],
            members: vec![],
        },
        Scenario {
            rule: "unresolved",
            what: "member 3 jams slots, then stays silent in blame (no conviction; it is \
                   excluded as unresponsive)",
            relay: vec![],
            members: vec![(3, vec![jam(), MemberFault::Refuse])],
        },
    ]
}

/// Runs a scenario under network seed `seed`; the first verdict with the wanted rule that an
/// honest member reached, with its case.
fn run(tg: &TestGroup, s: &Scenario, seed: u64) -> Option<(Verdict, Case)> {
    let mf: BTreeMap<u32, Vec<MemberFault>> = s.members.iter().cloned().collect();
    let mut net = Network::with_faults(tg, seed, LinkModel::default(), s.relay.clone(), &mf);
    let honest: Vec<usize> = (0..N).filter(|i| !mf.contains_key(&(*i as u32))).collect();
    for &i in &honest {
        for k in 0..10 {
            net.members[i]
                .as_mut()
                .unwrap()
                .submit(format!("{i}-{k}").as_bytes())
                .unwrap();
        }
    }
    net.start();
    let find = |net: &Network| {
        honest.iter().find_map(|&i| {
            net.member_events[i].iter().find_map(|e| match e {
                MemberEvent::Verdict { verdict, case } if verdict.rule.name() == s.rule => {
                    Some((verdict.clone(), (**case).clone()))
                }
                _ => None,
            })
        })
    };
    let _ = net.drive_bounded(200_000, |net| find(net).is_some());
    find(&net)
}

fn verdict_json(v: &Verdict) -> Value {
    json!({
        "round": v.round,
        "culprit": match v.culprit {
            Some(Culprit::Member(i)) => json!(i),
            Some(Culprit::Relay) => json!("relay"),
            None => Value::Null,
        },
        "rule": v.rule.name(),
        "unresponsive": v.unresponsive,
    })
}

/// Which optional fields of the Case are present (in Case order).
fn fields(c: &Case) -> Vec<&'static str> {
    let mut f = vec![];
    for (name, on) in [
        ("record", c.record.is_some()),
        ("zset", c.zset.is_some()),
        ("alloc", c.alloc.is_some()),
        ("disclosure", c.disclosure.is_some()),
        ("start", c.start.is_some()),
        ("reveals", c.reveals.is_some()),
        ("equivocation", c.equivocation.is_some()),
    ] {
        if on {
            f.push(name);
        }
    }
    f
}

fn group_toml(g: &Group) -> String {
    GroupFile {
        group: g.clone(),
        relay_addr: "127.0.0.1:0".to_string(),
    }
    .to_toml()
}

fn build() -> Value {
    let tg = TestGroup::new(N, group_params(), GROUP_SEED).unwrap();
    let toml = group_toml(&tg.group);
    let gid = hex::encode(tg.group.id());
    let mut out = vec![];
    let mut corrupt_source = None;
    for s in scenarios() {
        let (seed, (verdict, case)) = (1..40)
            .find_map(|seed| run(&tg, &s, seed).map(|x| (seed, x)))
            .unwrap_or_else(|| panic!("{}: no run produced this verdict", s.rule));
        let bytes = blame::encode_evidence(&case);
        assert_eq!(blame::judge(&case).unwrap(), verdict, "{}", s.rule);
        if s.rule == "pad-lie" {
            corrupt_source = Some(bytes.clone());
        }
        out.push(json!({
            "name": s.rule,
            "scenario": s.what,
            "group_seed": GROUP_SEED,
            "network_seed": seed,
            "group_toml": toml,
            "group_id": gid,
            "case_fields": fields(&case),
            "bundle": hex::encode(&bytes),
            "valid": true,
            "verdict": verdict_json(&verdict),
            "verify_evidence_exit": if verdict.culprit.is_some() { 0 } else { 1 },
        }));
    }
    // One byte flipped in the middle of the pad-lie bundle: the checksum no longer matches.
    let mut bad = corrupt_source.expect("pad-lie bundle");
    let at = bad.len() / 2;
    bad[at] ^= 0x01;
    out.push(json!({
        "name": "corrupt",
        "scenario": format!("the pad-lie bundle with byte {at} XORed with 0x01"),
        "group_toml": toml,
        "group_id": gid,
        "flipped_offset": at,
        "bundle": hex::encode(&bad),
        "valid": false,
        "error": "checksum mismatch",
        "verify_evidence_exit": 1,
    }));
    json!({
        "about": "Evidence bundles (docs/PROTOCOL.md §11.8) from seeded in-memory runs \
                  (dcnet::sim, TestGroup::new(4, params, group_seed), Network::with_faults(.., \
                  network_seed, ..)). bundle = \"dcnetEv1\" || bincode(Case) || \
                  H(\"dcnet/v1/evidence\"; \"dcnetEv1\" || bincode(Case)). verdict.culprit is a \
                  roster index, \"relay\" or null; verify_evidence_exit is the exit status of \
                  `dcnet verify-evidence --group GROUP FILE` (0 only for a conviction).",
        "vectors": out,
    })
}

#[test]
#[ignore = "writes tests/vectors/evidence.json; run on purpose only"]
fn regenerate_evidence_vectors() {
    std::fs::write(
        vector_path(),
        serde_json::to_string_pretty(&build()).unwrap() + "\n",
    )
    .unwrap();
}

fn load() -> Vec<Value> {
    let text = std::fs::read_to_string(vector_path()).expect("evidence.json");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn bundle(v: &Value) -> Vec<u8> {
    hex::decode(v["bundle"].as_str().unwrap()).unwrap()
}

/// Every bundle re-verifies with the library: same verdict; its group is the group file's;
/// the corrupt one is refused.
#[test]
fn library_reaches_the_pinned_verdicts() {
    let vs = load();
    let rules: Vec<&str> = vs.iter().map(|v| v["name"].as_str().unwrap()).collect();
    for want in [
        "pad-lie",
        "member-equivocation",
        "record-mismatch",
        "relay-equivocation",
        "unresolved",
        "corrupt",
    ] {
        assert!(rules.contains(&want), "evidence.json lacks {want}");
    }
    for v in &vs {
        let name = v["name"].as_str().unwrap();
        let gf = GroupFile::parse(
            v["group_toml"].as_str().unwrap(),
            std::path::Path::new("group.toml"),
        )
        .unwrap();
        assert_eq!(
            hex::encode(gf.group.id()),
            v["group_id"].as_str().unwrap(),
            "{name}: group id of the group file"
        );
        let decoded = blame::decode_evidence(&bundle(v));
        if !v["valid"].as_bool().unwrap() {
            let err = decoded.expect_err(name).to_string();
            assert!(
                err.contains(v["error"].as_str().unwrap()),
                "{name}: refused for another reason: {err}"
            );
            continue;
        }
        let case = decoded.unwrap_or_else(|e| panic!("{name}: {e}"));
        let g = Group::from_data(&case.group).unwrap();
        assert_eq!(g.id(), gf.group.id(), "{name}: bundle is for another group");
        assert_eq!(
            json!(fields(&case)),
            v["case_fields"],
            "{name}: case fields"
        );
        let verdict = blame::judge(&case).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verdict_json(&verdict), v["verdict"], "{name}: verdict");
        // The encoding is canonical: re-encoding gives the same bytes.
        assert_eq!(
            blame::encode_evidence(&case),
            bundle(v),
            "{name}: re-encoding"
        );
    }
}

/// `dcnet verify-evidence --group` agrees: exit 0 with the same culprit, rule and round for
/// each conviction; exit 1 for the unresolved bundle (it convicts nobody) and the corrupt one.
#[test]
fn verify_evidence_binary_agrees() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("evidence_vectors");
    std::fs::create_dir_all(&dir).unwrap();
    for v in load() {
        let name = v["name"].as_str().unwrap();
        let group = dir.join(format!("{name}.group.toml"));
        let file = dir.join(format!("{name}.evidence"));
        std::fs::write(&group, v["group_toml"].as_str().unwrap()).unwrap();
        std::fs::write(&file, bundle(&v)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcnet"))
            .arg("verify-evidence")
            .arg("--json")
            .arg("--group")
            .arg(&group)
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(v["verify_evidence_exit"].as_i64().unwrap() as i32),
            "{name}: exit status; stderr {stderr}"
        );
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["verify_evidence_exit"] == 0 {
            let want = &v["verdict"];
            assert_eq!(j["valid"], true, "{name}");
            assert_eq!(j["rule"], want["rule"], "{name}");
            assert_eq!(j["round"], want["round"], "{name}");
            match &want["culprit"] {
                Value::String(_) => assert_eq!(j["culprit_member"], Value::Null, "{name}"),
                c => assert_eq!(&j["culprit_member"], c, "{name}"),
            }
            assert_eq!(j["group_id"], v["group_id"], "{name}");
        } else {
            assert_eq!(j["valid"], false, "{name}");
            let why = if v["valid"] == true {
                format!("outcome {}", v["verdict"]["rule"].as_str().unwrap())
            } else {
                v["error"].as_str().unwrap().to_string()
            };
            assert!(stderr.contains(&why), "{name}: stderr {stderr}");
        }
    }
}

/// The independent Python checker (tests/vectors/check_evidence.py, standard library only,
/// written from docs/PROTOCOL.md) parses every bundle and verifies every signature in it.
#[test]
fn python_checks_the_bundles_from_the_spec() {
    python::check("check_evidence.py", &[]);
}

/// A relay key shared by two groups: a relay message re-signed under another group id cannot
/// stand in a case of this group (each bundle's record-mismatch case, with its ZSet re-signed by
/// the same relay key for another group, is refused; re-signed for its own group it still
/// convicts).
#[test]
fn relay_messages_of_another_group_are_refused_in_a_case() {
    let tg = TestGroup::new(N, group_params(), GROUP_SEED).unwrap();
    let v = load()
        .into_iter()
        .find(|v| v["name"] == "record-mismatch")
        .expect("a record-mismatch vector");
    let case = blame::decode_evidence(&bundle(&v)).unwrap();
    let resign = |group_id: [u8; 32]| {
        let mut c = case.clone();
        let z = c.zset.take().expect("a ZSet");
        c.zset = Some(dcnet::wire::Signed::sign(
            &tg.relay_key,
            group_id,
            z.header.epoch,
            z.header.round,
            z.header.sender,
            z.body,
        ));
        c
    };
    let same = blame::judge(&resign(*tg.group.id())).expect("same group");
    assert_eq!(verdict_json(&same), v["verdict"]);
    let mut other = *tg.group.id();
    other[0] ^= 1;
    assert!(
        blame::judge(&resign(other)).is_err(),
        "a ZSet signed for another group was accepted"
    );
}
