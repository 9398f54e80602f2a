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
        // With --json, stdout is JSON lines only (the text for people goes to stderr).
        for line in out.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "not JSON: {line}"
            );
        }
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
    // Members are m0..m4; no delivered message or table row may name one of them.
    let (code, out) = dcnet(&[
        "demo",
        "--members",
        "5",
        "--rounds",
        "20",
        "--transport",
        "memory",
    ]);
    assert_eq!(code, 0, "{out}");
    for line in out.lines() {
        let names_member = (0..5).any(|i| line.contains(&format!("m{i}")));
        let about_messages =
            line.starts_with("delivered") || line.trim_start().starts_with(char::is_numeric);
        assert!(!(names_member && about_messages), "{line}");
        assert!(!line.contains("member 0"), "{line}");
    }
}

#[test]
fn demo_output_uses_roster_names_and_plain_words() {
    let (code, out, err) = dcnet_full(&[
        "demo",
        "--transport",
        "memory",
        "--adversary",
        "jam-slots:3,withhold:5",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "adversaries: m3 jams another member's slot every round; m5 commits, then never reveals"
        ),
        "{out}"
    );
    assert!(out.contains("m3 convicted"), "{out}");
    assert!(
        out.contains("convicted: m3; excluded as unresponsive: m5"),
        "{out}"
    );
    // No Rust Debug text anywhere.
    for bad in [
        "Some(",
        "None",
        "Member(",
        "JamSlots",
        "{ ",
        "Absent)",
        "[3",
        "|A|",
        "(not counted",
    ] {
        assert!(!out.contains(bad), "{bad:?} in {out}");
    }
}

#[test]
fn demo_json_lists_blamed_members_as_excluded_too() {
    let (code, out) = dcnet(&[
        "demo",
        "--transport",
        "memory",
        "--adversary",
        "jam-slots:3,withhold:5",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let j = last_json(&out);
    assert_eq!(j["blamed"], serde_json::json!([3]));
    assert_eq!(j["blamed_names"], serde_json::json!(["m3"]));
    assert_eq!(j["unresponsive"], serde_json::json!([5]));
    assert_eq!(j["excluded"], serde_json::json!([3, 5]));
    assert!(j["excluded_at_round"].get("3").is_some(), "{j}");
    assert_eq!(j["ok"], true);
}

#[test]
fn demo_that_falls_short_exits_non_zero_and_says_why() {
    // Two rounds cannot carry the six scripted messages.
    let (code, out, err) =
        dcnet_full(&["demo", "--transport", "memory", "--rounds", "2", "--json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("did not do what it says") && err.contains("--rounds"),
        "{err}"
    );
    let j = last_json(&out);
    assert_eq!(j["ok"], false);
    assert!(!j["failures"].as_array().unwrap().is_empty());
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
        .filter(|p| p.extension().is_some_and(|x| x == "evidence"))
        .collect();
    assert_eq!(files.len(), 2);
    // The demo writes its group file next to the bundles and says how to check them.
    let group = dir.join("group.toml");
    let gf = dcnet::config::GroupFile::read(&group).expect("the demo's group.toml");
    let group_id = hex::encode(gf.group.id());
    let relay_key = gf.group.relay_key().to_string();
    assert_eq!(j["evidence"].as_array().unwrap().len(), 2);
    let g = group.to_str().unwrap();
    for f in &files {
        let (code, out) = dcnet(&["verify-evidence", "--group", g, f.to_str().unwrap()]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("group id {group_id}")), "{out}");
        assert!(out.contains(&format!("relay key {relay_key}")), "{out}");
        assert!(
            out.contains("m3 is convicted") || out.contains("m5 is convicted"),
            "{out}"
        );
        let (code, out) = dcnet(&[
            "verify-evidence",
            "--group",
            g,
            f.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{out}");
        let v = last_json(&out);
        assert_eq!(v["valid"], true);
        assert_eq!(v["group_id"], group_id.as_str());
        assert_eq!(v["relay_key"], relay_key.as_str());
        assert!(v["culprit"] == "m3" || v["culprit"] == "m5", "{v}");
        assert!(v["culprit_member"] == 3 || v["culprit_member"] == 5, "{v}");
        // One changed byte and it no longer verifies.
        let mut bytes = std::fs::read(f).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        let bad = dir.join("tampered.evidence");
        std::fs::write(&bad, &bytes).unwrap();
        let (code, out) = dcnet(&[
            "verify-evidence",
            "--group",
            g,
            bad.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 1);
        assert_eq!(last_json(&out)["valid"], false);
        std::fs::remove_file(&bad).unwrap();
    }
    // Several files at once: 0 when all are valid, 1 when one is not, 2 when one cannot be
    // read; one JSON object per file, reasons on stderr.
    let f: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    let (code, out, err) = dcnet_full(&["verify-evidence", "--group", g, f[0], f[1], "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["valid"] == true)
    );
    let bad = dir.join("not-evidence.evidence");
    std::fs::write(&bad, b"hello").unwrap();
    let b = bad.to_str().unwrap();
    let (code, out, err) = dcnet_full(&["verify-evidence", "--group", g, f[0], b, f[1]]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains(&format!("{b}: NOT valid evidence")), "{out}");
    assert!(
        out.contains("3 files: 2 valid, 1 not valid, 0 unreadable"),
        "{out}"
    );
    assert!(
        err.contains(b) && err.contains("not an evidence bundle"),
        "{err}"
    );
    let missing = dir.join("missing.evidence");
    let m = missing.to_str().unwrap();
    let (code, _, err) = dcnet_full(&["verify-evidence", "--group", g, f[0], b, m]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("cannot read {m}")), "{err}");
    // A group file that cannot be read is a usage error too.
    let (code, _, err) = dcnet_full(&["verify-evidence", "--group", m, f[0]]);
    assert_eq!(code, 2, "{err}");
    // No file at all: a usage error.
    let (code, _, _) = dcnet_full(&["verify-evidence", "--group", g]);
    assert_eq!(code, 2);
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
    let (code, out) = dcnet(&[
        "verify-evidence",
        "--trust-bundle-roster",
        "/nonexistent/file",
        "--json",
    ]);
    assert_eq!(code, 2, "a file that cannot be read is exit 2");
    assert_eq!(last_json(&out)["valid"], false);
}

fn dcnet_full(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dcnet"))
        .args(args)
        .output()
        .expect("run dcnet");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A directory with relay.key, m0.key, m1.key and group.toml (relay on an unused local port).
fn small_group(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dcnet-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = |name: &str| {
        let (code, out) = dcnet(&["keygen", "--out", dir.join(name).to_str().unwrap()]);
        assert_eq!(code, 0);
        out.trim().to_string()
    };
    let relay = key("relay.key");
    let m0 = key("m0.key");
    let m1 = key("m1.key");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out) = dcnet(&[
        "group",
        "new",
        "--name",
        "cli",
        "--relay",
        &format!("127.0.0.1:{port}"),
        "--relay-key",
        &relay,
        "--member",
        &format!("m0={m0}"),
        "--member",
        &format!("m1={m1}"),
        "--out",
        dir.join("group.toml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    dir
}

#[test]
fn a_member_without_its_state_file_refuses_to_start_unless_new() {
    let dir = small_group("state");
    let s = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let (g, k, st) = (s("group.toml"), s("m0.key"), s("m0.state"));
    // Missing state file: refused, and the message says what to do.
    let (code, _, err) = dcnet_full(&["member", "--group", &g, "--key", &k]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("state file {st} is missing"))
            && err.contains("restore it")
            && err.contains("pass --new"),
        "{err}"
    );
    // Corrupt state file: refused too (never read as round 0).
    std::fs::write(&st, "garbage").unwrap();
    let (code, _, err) = dcnet_full(&["member", "--group", &g, "--key", &k]);
    assert_ne!(code, 0);
    assert!(err.contains("corrupt") && err.contains("--new"), "{err}");
    // --new refuses to overwrite a state file that exists.
    let (code, _, err) = dcnet_full(&["member", "--group", &g, "--key", &k, "--new"]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&st).unwrap(), "garbage");
    // --new on a fresh key writes an empty v1 state file at once (the member then keeps
    // trying to reach the relay, which is not running).
    std::fs::remove_file(&st).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcnet"))
        .args(["member", "--group", &g, "--key", &k, "--new"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&st).map_or(true, |t| t.is_empty())
        && std::time::Instant::now() < end
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        std::fs::read_to_string(&st).unwrap(),
        "dcnet-state v1\nround 0\nepoch 0\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = small_group("keymode");
    let s = |f: &str| dir.join(f).to_str().unwrap().to_string();
    let k = s("m0.key");
    assert_eq!(
        std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
        0o600,
        "keygen writes 0600"
    );
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = dcnet_full(&["member", "--group", &s("group.toml"), "--key", &k, "--new"]);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("chmod 600 {k}")), "{err}");
    let rk = s("relay.key");
    std::fs::set_permissions(&rk, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (code, _, err) = dcnet_full(&["relay", "--group", &s("group.toml"), "--key", &rk]);
    assert_ne!(code, 0);
    assert!(err.contains(&format!("chmod 600 {rk}")), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_evidence_checks_the_bundle_against_the_group_file() {
    let dir = std::env::temp_dir().join(format!("dcnet-evg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (code, out) = dcnet(&[
        "demo",
        "--transport",
        "memory",
        "--adversary",
        "equivocate:2",
        "--evidence-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let bundle = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "evidence"))
        .expect("a bundle");
    let bundle = bundle.to_str().unwrap();
    let demo_id = hex::encode(
        dcnet::config::GroupFile::read(&dir.join("group.toml"))
            .unwrap()
            .group
            .id(),
    );
    // Valid evidence, but for another group: refused, naming both group ids.
    let other_dir = small_group("evg");
    let other = other_dir.join("group.toml");
    let other_id = hex::encode(dcnet::config::GroupFile::read(&other).unwrap().group.id());
    let (code, out, err) = dcnet_full(&[
        "verify-evidence",
        "--group",
        other.to_str().unwrap(),
        bundle,
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "evidence is for group {demo_id}, not for {other_id} from {}",
            other.display()
        )),
        "{err}"
    );
    let v = last_json(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["group_id"], demo_id.as_str());
    // Without a group file: refused by default.
    let (code, _, err) = dcnet_full(&["verify-evidence", bundle]);
    assert_ne!(code, 0);
    assert!(err.contains("--group"), "{err}");
    // The explicit escape hatch checks against the bundle's own roster, with a warning.
    let (code, out, err) =
        dcnet_full(&["verify-evidence", "--trust-bundle-roster", bundle, "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(err.contains("warning"), "{err}");
    let v = last_json(&out);
    assert_eq!(v["valid"], true);
    assert_eq!(v["group_id"], demo_id.as_str());
    assert_eq!(v["roster_from_bundle"], true);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other_dir);
}

/// Three fresh keys in `dir`: (relay, m0, m1) public keys.
fn three_keys(dir: &std::path::Path) -> (String, String, String) {
    let key = |name: &str| {
        let (code, out) = dcnet(&["keygen", "--out", dir.join(name).to_str().unwrap()]);
        assert_eq!(code, 0);
        out.trim().to_string()
    };
    (key("relay.key"), key("m0.key"), key("m1.key"))
}

fn fresh_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dcnet-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn key_show_prints_the_public_key_and_checks_the_mode() {
    let dir = fresh_dir("keyshow");
    let (_, m0, _) = three_keys(&dir);
    let k = dir.join("m0.key");
    let k = k.to_str().unwrap();
    let (code, out, err) = dcnet_full(&["key", "show", k]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{m0}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(k, std::fs::Permissions::from_mode(0o604)).unwrap();
        let (code, out, err) = dcnet_full(&["key", "show", k]);
        assert_eq!(code, 1);
        assert!(out.is_empty(), "{out}");
        assert!(err.contains(&format!("chmod 600 {k}")), "{err}");
    }
    let (code, _, err) = dcnet_full(&["key", "show", dir.join("none").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("none"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn group_new_refuses_to_overwrite_without_force() {
    let dir = fresh_dir("force");
    let (relay, m0, m1) = three_keys(&dir);
    let out = dir.join("group.toml");
    let o = out.to_str().unwrap();
    let (a, b) = (format!("a={m0}"), format!("b={m1}"));
    let args = |extra: &[&str]| {
        let mut v = vec![
            "group",
            "new",
            "--name",
            "g",
            "--relay",
            "127.0.0.1:1",
            "--relay-key",
            &relay,
            "--member",
            &a,
            "--member",
            &b,
            "--out",
            o,
        ];
        v.extend_from_slice(extra);
        v.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |v: Vec<String>| {
        let r: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
        dcnet_full(&r)
    };
    let (code, _, err) = run(args(&[]));
    assert_eq!(code, 0, "{err}");
    let first = std::fs::read_to_string(&out).unwrap();
    let (code, _, err) = run(args(&["--slot-bytes", "512"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        first,
        "left as it was"
    );
    let (code, _, err) = run(args(&["--slot-bytes", "512", "--force"]));
    assert_eq!(code, 0, "{err}");
    let gf = dcnet::config::GroupFile::read(&out).unwrap();
    assert_eq!(gf.group.params().slot_bytes, 512);
    // 0 never silently means "default".
    for flag in [
        "--cells",
        "--slots",
        "--max-fragments",
        "--keys-ms",
        "--commit-ms",
    ] {
        let (code, _, err) = run(args(&[flag, "0", "--force"]));
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(flag), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_group_new_flag_lands_in_the_group_file_and_group_show_prints_it() {
    let dir = fresh_dir("flags");
    let (relay, m0, m1) = three_keys(&dir);
    let out = dir.join("group.toml");
    let (a, b) = (format!("alice={m0}"), format!("bob={m1}"));
    let (code, _, err) = dcnet_full(&[
        "group",
        "new",
        "--name",
        "flags",
        "--relay",
        "127.0.0.1:4433",
        "--relay-key",
        &relay,
        "--member",
        &a,
        "--member",
        &b,
        "--cells",
        "7",
        "--slots",
        "3",
        "--slot-bytes",
        "300",
        "--p-trap",
        "0.25",
        "--p-cover",
        "0.5",
        "--tolerance",
        "0",
        "--round-ms",
        "250",
        "--post-round-ms",
        "40",
        "--keys-ms",
        "4000",
        "--deadline-ms",
        "900",
        "--commit-ms",
        "1100",
        "--reveal-ms",
        "1200",
        "--unblind-ms",
        "1300",
        "--max-fragments",
        "77",
        "--epoch-rounds",
        "40",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let gf = dcnet::config::GroupFile::read(&out).unwrap();
    let p = gf.group.params().clone();
    let expected = dcnet::params::RoundParams {
        cells: 7,
        slots: 3,
        slot_bytes: 300,
        p_trap: 0.25,
        p_cover: 0.5,
        keys_ms: 4000,
        commit_ms: 1100,
        reveal_ms: 1200,
        unblind_ms: 1300,
        post_round_ms: 40,
        round_ms: 250,
        max_fragments: 77,
        tolerance: 0,
        epoch_rounds: 40,
    };
    assert_eq!(p, expected);
    let (code, show, err) = dcnet_full(&["group", "show", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "group flags".to_string(),
        format!("group id   {}", hex::encode(gf.group.id())),
        "relay      127.0.0.1:4433".to_string(),
        format!("relay key  {relay}"),
        format!("alice  {m0}"),
        format!("bob    {m1}"),
        "round_ms       250 ms".to_string(),
        "cells          7 reservation cells".to_string(),
        "slots          3 slots per round".to_string(),
        "slot_bytes     300 bytes per slot".to_string(),
        "p_trap         0.25".to_string(),
        "p_cover        0.5".to_string(),
        "tolerance      0 (a message goes out only while at least 2 of the 2 members".to_string(),
        "max_fragments  77".to_string(),
        "keys_ms        4000 ms".to_string(),
        "commit_ms      1100 ms".to_string(),
        "reveal_ms      1200 ms".to_string(),
        "unblind_ms     1300 ms".to_string(),
        "post_round_ms  40 ms".to_string(),
    ] {
        assert!(show.contains(&needle), "{needle:?} missing in\n{show}");
    }
    // Defaults: a chat's pace, and --deadline-ms for all three deadlines.
    let out2 = dir.join("defaults.toml");
    let (code, _, err) = dcnet_full(&[
        "group",
        "new",
        "--name",
        "d",
        "--relay",
        "127.0.0.1:4433",
        "--relay-key",
        &relay,
        "--member",
        &a,
        "--member",
        &b,
        "--deadline-ms",
        "500",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let p = dcnet::config::GroupFile::read(&out2)
        .unwrap()
        .group
        .params()
        .clone();
    assert_eq!(p.round_ms, 500);
    assert_eq!((p.commit_ms, p.reveal_ms, p.unblind_ms), (500, 500, 500));
    // Four cells per member, one slot per member.
    assert_eq!((p.cells, p.slots), (8, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logs_have_no_colour_when_captured_and_follow_v_and_q() {
    // stderr is a pipe here: never ANSI escape codes, whatever the level.
    let run = |args: &[&str], rust_log: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dcnet"));
        c.args(args);
        match rust_log {
            Some(v) => c.env("RUST_LOG", v),
            None => c.env_remove("RUST_LOG"),
        };
        let out = c.output().expect("run dcnet");
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // Enough rounds for the script and the private conversation on a loaded machine.
    let demo = ["demo", "--members", "3", "--rounds", "24"];
    let err = run(&demo, Some("info"));
    assert!(err.contains("INFO"), "RUST_LOG=info logs: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escape in captured stderr: {err:?}"
    );
    let mut v = vec!["-v"];
    v.extend_from_slice(&demo);
    let err = run(&v, None);
    assert!(err.contains("INFO") && !err.contains('\u{1b}'), "{err:?}");
    let mut q = vec!["-q"];
    q.extend_from_slice(&demo);
    let err = run(&q, Some(""));
    assert!(!err.contains("INFO") && !err.contains("WARN"), "{err}");
    // RUST_LOG wins over -q.
    let err = run(&q, Some("info"));
    assert!(err.contains("INFO"), "{err}");
}

#[test]
fn bench_goodput_reports_goodput_beside_the_bounds_it_measured() {
    let (code, out) = dcnet(&[
        "bench",
        "--goodput",
        "--members",
        "2",
        "--lengths",
        "1024",
        "--seconds",
        "0.3",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v = last_json(&out);
    assert_eq!(v["mode"], "goodput");
    assert!(v["chacha20_bytes_per_s"].as_f64().unwrap() > 0.0);
    assert!(v["quic_bytes_per_s"].as_f64().unwrap() > 0.0);
    let r = &v["results"][0];
    assert_eq!(r["members"], 2);
    for k in ["prg_bound_bytes_per_s", "quic_bound_bytes_per_s"] {
        assert!(r[k].as_f64().unwrap() > 0.0, "{k}: {r}");
    }
    // Goodput is measured, not derived: it is a count of delivered bytes over the window, so
    // it is finite and never negative (on a slow machine it may be zero).
    let g = r["goodput_bytes_per_s"].as_f64().unwrap();
    assert!(g.is_finite() && g >= 0.0, "{r}");
    assert!(r["share_of_bound"].as_f64().unwrap().is_finite());
    assert!(
        out.contains("goodput MB/s") && out.contains("QUIC MB/s"),
        "{out}"
    );
}
