//! The `dcnet` binary: demo JSON summaries, adversaries, evidence files and verify-evidence.

use std::process::Command;

fn dcnet(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dcnet"))
        .args(args)
        .output()
        .expect("run dcnet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON")
}

#[test]
fn demo_default_delivers_everything() {
    for transport in ["memory", "quic"] {
        let (code, out) = dcnet(&["demo", "--json", "--transport", transport]);
        assert_eq!(code, 0, "{out}");
        let j = last_json(&out);
        for k in [
            "members",
            "rounds",
            "sent",
            "delivered",
            "collisions",
            "blamed",
        ] {
            assert!(j.get(k).is_some(), "missing {k}");
        }
        assert_eq!(j["sent"], j["delivered"], "{transport}");
        assert_eq!(j["blamed"], serde_json::json!([]));
        assert_eq!(j["transport"], transport);
    }
}

#[test]
fn demo_output_never_names_a_sender() {
    // Members are m0..m7; no line may tie a message to one of them.
    let (_, out) = dcnet(&[
        "demo",
        "--members",
        "5",
        "--rounds",
        "20",
        "--transport",
        "memory",
    ]);
    for line in out.lines() {
        assert!(!line.contains("member 0") && !line.contains("m0"), "{line}");
    }
}

#[test]
fn adversaries_are_convicted_and_evidence_verifies() {
    let dir = std::env::temp_dir().join(format!("dcnet-ev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, out) = dcnet(&[
        "demo",
        "--transport",
        "memory",
        "--adversary",
        "jam-slots:3,equivocate:5",
        "--evidence-dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let j = last_json(&out);
    let mut blamed: Vec<u64> = j["blamed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    blamed.sort();
    assert_eq!(blamed, vec![3, 5]);
    assert_eq!(j["honest_blamed"], 0);
    assert_eq!(j["relay_convicted"], false);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2);
    for f in &files {
        let (code, out) = dcnet(&["verify-evidence", f.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{out}");
        let v = last_json(&out);
        assert_eq!(v["valid"], true);
        assert!(v["culprit"] == 3 || v["culprit"] == 5);
        // One changed byte and it no longer verifies.
        let mut bytes = std::fs::read(f).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        let bad = dir.join("tampered.evidence");
        std::fs::write(&bad, &bytes).unwrap();
        let (code, out) = dcnet(&["verify-evidence", bad.to_str().unwrap(), "--json"]);
        assert_eq!(code, 1);
        assert_eq!(last_json(&out)["valid"], false);
        std::fs::remove_file(&bad).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tampering_relay_is_convicted_in_the_demo() {
    let (code, out) = dcnet(&["demo", "--adversary", "relay-tamper", "--json"]);
    // (default transport: real QUIC on 127.0.0.1)
    assert_eq!(code, 0, "{out}");
    let j = last_json(&out);
    assert_eq!(j["relay_convicted"], true);
    assert_eq!(j["honest_blamed"], 0);
}

#[test]
fn bad_flags_give_clear_errors() {
    let (code, _) = dcnet(&["demo", "--adversary", "jam-slots:99"]);
    assert_ne!(code, 0);
    let (code, _) = dcnet(&["demo", "--members", "1"]);
    assert_ne!(code, 0);
    let (code, out) = dcnet(&["verify-evidence", "/nonexistent/file", "--json"]);
    assert_eq!(code, 1);
    assert_eq!(last_json(&out)["valid"], false);
}
