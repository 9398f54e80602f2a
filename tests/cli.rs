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
        .filter(|p| p.extension().is_some_and(|x| x == "evidence"))
        .collect();
    assert_eq!(files.len(), 2);
    // The demo writes its group file next to the bundles and says how to check them.
    let group = dir.join("group.toml");
    let gf = dcnet::config::GroupFile::read(&group).expect("the demo's group.toml");
    let group_id = hex::encode(gf.group.id());
    let relay_key = gf.group.relay_key().to_string();
    assert!(
        out.contains(&format!("verify-evidence --group {}", group.display())),
        "{out}"
    );
    let g = group.to_str().unwrap();
    for f in &files {
        let (code, out) = dcnet(&[
            "verify-evidence",
            "--group",
            g,
            f.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains(&format!("group id {group_id}")), "{out}");
        assert!(out.contains(&format!("relay key {relay_key}")), "{out}");
        let v = last_json(&out);
        assert_eq!(v["valid"], true);
        assert_eq!(v["group_id"], group_id.as_str());
        assert_eq!(v["relay_key"], relay_key.as_str());
        assert!(v["culprit"] == 3 || v["culprit"] == 5);
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
    assert_eq!(code, 1);
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
    let (code, out, _) = dcnet_full(&[
        "verify-evidence",
        "--group",
        other.to_str().unwrap(),
        bundle,
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "evidence is for group {demo_id}, not for {other_id} from {}",
            other.display()
        )),
        "{out}"
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
