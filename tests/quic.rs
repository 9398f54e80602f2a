//! Real processes on loopback: a `dcnet relay` and five `dcnet member`s from the built binary.
//!
//! Every wait reads the processes' output until the condition holds or a deadline passes; no
//! test sleeps to wait for a condition.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dcnet");

struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    name: String,
}

impl Proc {
    fn start(name: &str, args: &[&str]) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn dcnet");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            seen: Vec::new(),
            name: name.to_string(),
        }
    }

    /// Reads output until `pred` holds for a line (already seen lines count), or `within` passes.
    fn wait_for(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> bool {
        if self.seen.iter().any(|l| pred(l)) {
            return true;
        }
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = pred(&l);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Reads output until the process closes stdout (it exited), then returns its exit code;
    /// `None` if it is still running after `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Some(self.child.wait().ok()?.code().unwrap_or(-1));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
            }
        }
    }

    fn send_line(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{s}").expect("write to member");
        stdin.flush().expect("flush");
    }

    /// The last line seen that contains `needle`.
    fn last_line_with(&self, needle: &str) -> String {
        self.seen
            .iter()
            .rev()
            .find(|l| l.contains(needle))
            .cloned()
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    fn drain(&mut self) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
    }

    fn delivered_count(&self, text: &str) -> usize {
        self.seen
            .iter()
            .filter(|l| {
                l.contains("\"event\":\"delivered\"") && l.contains(&format!("\"text\":\"{text}\""))
            })
            .count()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run dcnet");
    assert!(
        out.status.success(),
        "dcnet {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn free_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).to_str().expect("path").to_string()
}

struct Setup {
    dir: PathBuf,
    group: String,
    relay_addr: String,
}

fn setup(tag: &str, n: usize) -> Setup {
    let dir = std::env::temp_dir().join(format!("dcnet-quic-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let relay_key = run(&["keygen", "--out", &p(&dir, "relay.key")])
        .trim()
        .to_string();
    let mut args: Vec<String> = Vec::new();
    for i in 0..n {
        let k = run(&["keygen", "--out", &p(&dir, &format!("m{i}.key"))])
            .trim()
            .to_string();
        args.push("--member".into());
        args.push(format!("m{i}={k}"));
    }
    let relay_addr = format!("127.0.0.1:{}", free_port());
    let group = p(&dir, "group.toml");
    let mut cmd: Vec<String> = vec![
        "group".into(),
        "new".into(),
        "--name".into(),
        "test".into(),
        "--relay".into(),
        relay_addr.clone(),
        "--relay-key".into(),
        relay_key,
        "--deadline-ms".into(),
        "500".into(),
        "--out".into(),
        group.clone(),
    ];
    cmd.extend(args);
    let refs: Vec<&str> = cmd.iter().map(|s| s.as_str()).collect();
    run(&refs);
    Setup {
        dir,
        group,
        relay_addr,
    }
}

const T: Duration = Duration::from_secs(30);

fn start_relay(s: &Setup) -> Proc {
    let mut r = relay_proc(s, &[]);
    assert!(
        r.wait_for(T, |l| l.contains("relay listening")),
        "relay did not start"
    );
    r
}

/// `dcnet relay` for the setup's group, with `extra` arguments (not waited for).
fn relay_proc(s: &Setup, extra: &[&str]) -> Proc {
    let key = p(&s.dir, "relay.key");
    let mut args = vec!["relay", "--group", &s.group, "--key", &key];
    args.extend_from_slice(extra);
    Proc::start("relay", &args)
}

/// Starts member `i`. `new`: its first start (`--new`, an empty state file); a restart of a
/// member that ran before reuses its state file and must not pass `--new`.
fn start_member(s: &Setup, i: usize, new: bool) -> Proc {
    let key = p(&s.dir, &format!("m{i}.key"));
    let mut args = vec!["member", "--group", &s.group, "--key", &key, "--json"];
    if new {
        args.push("--new");
    }
    Proc::start(&format!("m{i}"), &args)
}

fn all_deliver(members: &mut [&mut Proc], text: &str) {
    for m in members.iter_mut() {
        let needle = format!("\"text\":\"{text}\"");
        let name = m.name.clone();
        assert!(
            m.wait_for(T, |l| l.contains("\"event\":\"delivered\"")
                && l.contains(&needle)),
            "{name} never got {text:?}; saw {:?}",
            m.seen.iter().rev().take(5).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_real_group_on_loopback() {
    let s = setup("group", 5);
    let mut relay = start_relay(&s);
    let mut ms: Vec<Proc> = (0..5).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        let name = m.name.clone();
        assert!(
            m.wait_for(T, |l| l.contains("\"event\":\"epoch\"")),
            "{name} never joined an epoch"
        );
    }
    // Lines fed on stdin reach every member.
    ms[1].send_line("alpha");
    ms[3].send_line("beta");
    {
        let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
        all_deliver(&mut refs, "alpha");
        all_deliver(&mut refs, "beta");
    }

    // kill -9 one member mid-run: the rest keep delivering.
    ms[4].kill();
    ms[0].send_line("gamma");
    {
        let mut refs: Vec<&mut Proc> = ms[..4].iter_mut().collect();
        all_deliver(&mut refs, "gamma");
    }

    // (A key not in the roster: misconfigured_members_are_told_what_is_wrong_and_stop.)

    // Garbage datagrams and an oversized frame at the relay's port do not crash it.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for k in 0..200usize {
        let junk: Vec<u8> = (0..(k * 37 % 1400 + 1))
            .map(|i| (i * 31 + k) as u8)
            .collect();
        let _ = sock.send_to(&junk, &s.relay_addr);
    }
    oversized_frame_as(&s, 4);
    ms[2].send_line("delta");
    {
        let mut refs: Vec<&mut Proc> = ms[..4].iter_mut().collect();
        all_deliver(&mut refs, "delta");
    }

    // A relay restart loses nothing: a line submitted while it is down is delivered after.
    relay.kill();
    ms[1].send_line("epsilon");
    assert!(ms[1].wait_for(T, |l| l.contains("\"event\":\"queued\"")));
    let _relay2 = start_relay(&s);
    {
        let mut refs: Vec<&mut Proc> = ms[..4].iter_mut().collect();
        all_deliver(&mut refs, "epsilon");
    }

    // The member killed with -9 comes back from its state file (no --new): it rejoins and
    // delivers again. Its state file records the round and epoch it had reached.
    let state = std::fs::read_to_string(s.dir.join("m4.state")).expect("m4's state file");
    assert!(state.starts_with("dcnet-state v1\nround "), "{state:?}");
    ms[4] = start_member(&s, 4, false);
    assert!(
        ms[4].wait_for(T, |l| l.contains("\"event\":\"epoch\"")),
        "the restarted member never joined an epoch"
    );
    ms[4].send_line("zeta");
    {
        let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
        all_deliver(&mut refs, "zeta");
    }

    // Exactly once, everywhere.
    for m in ms[..4].iter_mut() {
        m.drain();
        for t in ["alpha", "beta", "gamma", "delta", "epsilon"] {
            assert_eq!(
                m.delivered_count(t),
                1,
                "{} got {t} {} times",
                m.name,
                m.delivered_count(t)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// `/dm`, `/reply` and `/nym` between real member processes: each private message is printed
/// by its recipient only (the third member prints nothing for it, though it delivered later
/// posts), the answer names its writer to the one who wrote first, and a pseudonym post shows
/// its name everywhere.
#[test]
fn dm_reply_and_nym_between_real_member_processes() {
    let s = setup("dm", 3);
    let _relay = start_relay(&s);
    let mut ms: Vec<Proc> = (0..3).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        let name = m.name.clone();
        assert!(
            m.wait_for(T, |l| l.contains("\"event\":\"epoch\"")),
            "{name} never joined an epoch"
        );
    }
    let dm_event = |text: &'static str| {
        move |l: &str| l.contains("\"event\":\"dm\"") && l.contains(&format!("\"text\":\"{text}\""))
    };
    ms[0].send_line("/dm m2 the first secret");
    assert!(
        ms[2].wait_for(T, dm_event("the first secret")),
        "m2 never read its DM"
    );
    let line = ms[2].last_line_with("the first secret");
    assert!(
        line.contains("\"from\":null") && line.contains("\"number\":1"),
        "{line}"
    );
    ms[2].send_line("/reply 1 the second secret");
    assert!(
        ms[0].wait_for(T, dm_event("the second secret")),
        "m0 never read the answer"
    );
    let line = ms[0].last_line_with("the second secret");
    assert!(
        line.contains("\"from\":\"m2\"") && line.contains("\"reply\":true"),
        "{line}"
    );
    ms[1].send_line("/nym owl");
    ms[1].send_line("hoot");
    for m in ms.iter_mut() {
        let name = m.name.clone();
        assert!(
            m.wait_for(T, |l| l.contains("\"nym\":\"owl\"")
                && l.contains("\"text\":\"hoot\"")),
            "{name} never showed the pseudonym post"
        );
    }
    // m1 delivered everything sent before the post, and printed neither secret; nobody
    // printed a secret it was not the recipient of.
    for (i, secret) in [
        (0, "the first secret"),
        (1, "the first secret"),
        (1, "the second secret"),
        (2, "the second secret"),
    ] {
        ms[i].drain();
        assert!(
            !ms[i].seen.iter().any(|l| l.contains(secret)),
            "m{i} printed {secret:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn a_second_process_with_the_same_key_is_refused_and_the_first_keeps_going() {
    let s = setup("dup", 3);
    let _relay = start_relay(&s);
    let mut ms: Vec<Proc> = (0..3).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        let name = m.name.clone();
        assert!(
            m.wait_for(T, |l| l.contains("\"event\":\"epoch\"")),
            "{name} never joined an epoch"
        );
    }
    ms[0].drain();
    let before = ms[0].seen.len();
    // The same key again (its state file exists, so no --new): the relay keeps the active
    // connection and refuses this one; after a bounded retry it stops with an error.
    let started = Instant::now();
    let mut dup = start_member(&s, 0, false);
    dup.name = "m0-again".into();
    let code = dup.wait_exit(Duration::from_secs(20));
    assert!(
        matches!(code, Some(c) if c != 0),
        "the second process did not stop with an error: {code:?}; saw {:?}",
        dup.seen
    );
    assert!(
        dup.seen.iter().any(|l| l.contains("\"event\":\"fatal\"")
            && l.contains("another connection with this key is active")),
        "{:?}",
        dup.seen
    );
    assert!(!dup.seen.iter().any(|l| l.contains("\"event\":\"epoch\"")));
    assert!(started.elapsed() < Duration::from_secs(15));
    // The first one was never knocked off and keeps delivering.
    ms[0].send_line("still-here");
    ms[2].send_line("me-too");
    {
        let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
        all_deliver(&mut refs, "still-here");
        all_deliver(&mut refs, "me-too");
    }
    ms[0].drain();
    assert!(
        !ms[0].seen[before..]
            .iter()
            .any(|l| l.contains("\"event\":\"disconnected\"")),
        "the first connection was disturbed: {:?}",
        &ms[0].seen[before..]
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Connects as member `i` with the library's own TLS config and announces a frame far above the
/// limit; the relay must drop that connection and carry on.
fn oversized_frame_as(s: &Setup, i: usize) {
    use dcnet::config::{GroupFile, read_key};
    use dcnet::net::tls;
    let gf = GroupFile::read(Path::new(&s.group)).unwrap();
    let key = read_key(&s.dir.join(format!("m{i}.key"))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = tls::client_config(tls::node_cert(&key).unwrap(), *gf.group.relay_key()).unwrap();
        let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        ep.set_default_client_config(cfg);
        let conn = ep
            .connect(gf.relay_socket().unwrap(), "dcnet")
            .unwrap()
            .await
            .expect("a roster key is accepted");
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        send.write_all(&[0u8; 1024]).await.unwrap();
        // The relay closes the stream/connection: reading ends (bounded by the idle timeout).
        let mut buf = [0u8; 64];
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(_)) = recv.read(&mut buf).await {}
        })
        .await;
        assert!(
            ended.is_ok(),
            "the relay kept an oversized frame's connection open"
        );
        ep.close(0u32.into(), b"");
    });
}

/// Starts member `i` with another group file.
fn start_member_with(s: &Setup, i: usize, group: &str, new: bool) -> Proc {
    let key = p(&s.dir, &format!("m{i}.key"));
    let mut args = vec!["member", "--group", group, "--key", &key, "--json"];
    if new {
        args.push("--new");
    }
    Proc::start(&format!("m{i}"), &args)
}

fn joined(m: &mut Proc) {
    let name = m.name.clone();
    assert!(
        m.wait_for(T, |l| l.contains("\"event\":\"epoch\"")),
        "{name} never joined an epoch; saw {:?}",
        m.seen
    );
}

fn fatal_line(m: &Proc) -> String {
    m.seen
        .iter()
        .find(|l| l.contains("\"event\":\"fatal\""))
        .cloned()
        .unwrap_or_default()
}

fn signal(m: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &m.child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} failed");
}

#[test]
fn a_member_killed_and_restarted_at_once_rejoins() {
    let s = setup("restart", 3);
    let _relay = start_relay(&s);
    let mut ms: Vec<Proc> = (0..3).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        joined(m);
    }
    for round in 0..2 {
        // kill -9 and start again with no pause: the relay still holds the old connection.
        ms[2].kill();
        ms[2] = start_member(&s, 2, false);
        joined(&mut ms[2]);
        let text = format!("back-{round}");
        ms[2].send_line(&text);
        let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
        all_deliver(&mut refs, &text);
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn misconfigured_members_are_told_what_is_wrong_and_stop() {
    let s = setup("misconf", 4);
    let _relay = start_relay(&s);
    // Three good members (a message needs three present in a group of four); m2 is the one
    // misconfigured below.
    let mut ms: Vec<Proc> = [0, 1, 3]
        .map(|i| start_member(&s, i, true))
        .into_iter()
        .collect();
    for m in ms.iter_mut() {
        joined(m);
    }
    let text = std::fs::read_to_string(&s.group).unwrap();

    // A group file with one parameter changed: another group id.
    assert!(text.contains("p_trap = 0.2"), "{text}");
    let changed = p(&s.dir, "changed.toml");
    std::fs::write(&changed, text.replace("p_trap = 0.2", "p_trap = 0.3")).unwrap();
    let mut m2 = start_member_with(&s, 2, &changed, true);
    let code = m2.wait_exit(T);
    assert_eq!(code, Some(1), "{:?}", m2.seen);
    let f = fatal_line(&m2);
    let id = |t: &str| {
        let i = t.find("group_id = ").expect("group id comment") + "group_id = ".len();
        t[i..i + 64].to_string()
    };
    let changed_text = std::fs::read_to_string(&changed).unwrap();
    let mine = dcnet::config::GroupFile::parse(&changed_text, Path::new(&changed)).unwrap();
    let mine = hex::encode(mine.group.id());
    assert!(
        f.contains("group file differs") && f.contains(&id(&text)) && f.contains(&mine),
        "{f}"
    );
    assert!(!m2.seen.iter().any(|l| l.contains("\"event\":\"epoch\"")));

    // The group never noticed.
    ms[0].send_line("unharmed");
    let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
    all_deliver(&mut refs, "unharmed");
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn sigint_sigterm_and_end_of_input_stop_a_member_cleanly() {
    let s = setup("signals", 3);
    let _relay = start_relay(&s);
    let mut ms: Vec<Proc> = (0..3).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        joined(m);
    }
    for (i, sig) in [(1, "-INT"), (2, "-TERM")] {
        signal(&ms[i], sig);
        let code = ms[i].wait_exit(Duration::from_secs(5));
        assert_eq!(code, Some(0), "{sig}: {:?}", ms[i].seen);
        ms[i] = start_member(&s, i, false);
        joined(&mut ms[i]);
    }
    // End of input: the queued line goes out, then the member leaves with status 0.
    ms[0].send_line("last-words");
    ms[0].stdin = None; // EOF
    let code = ms[0].wait_exit(T);
    assert_eq!(code, Some(0), "{:?}", ms[0].seen);
    assert!(
        ms[0]
            .seen
            .iter()
            .any(|l| l.contains("\"event\":\"drained\""))
    );
    let mut refs: Vec<&mut Proc> = ms[1..].iter_mut().collect();
    all_deliver(&mut refs, "last-words");
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn a_queued_line_survives_kill_9_while_the_relay_is_down() {
    let s = setup("outbox", 3);
    let mut relay = start_relay(&s);
    let mut ms: Vec<Proc> = (0..3).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        joined(m);
    }
    relay.kill();
    ms[1].send_line("kept-safe");
    assert!(ms[1].wait_for(T, |l| l.contains("\"event\":\"queued\"")));
    ms[1].kill();
    // Owner-only: the outbox holds a message not yet sent.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.join("m1.outbox"))
            .expect("the outbox file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "outbox mode {mode:o}");
    }
    ms[1] = start_member(&s, 1, false);
    assert!(
        ms[1].wait_for(T, |l| l.contains("\"event\":\"restored\"")),
        "{:?}",
        ms[1].seen
    );
    let _relay = start_relay(&s);
    {
        let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
        all_deliver(&mut refs, "kept-safe");
    }
    for m in ms.iter_mut() {
        m.drain();
        assert_eq!(m.delivered_count("kept-safe"), 1, "{}", m.name);
    }
    // Sent: nothing unsent stays on disk.
    assert!(
        ms[1].wait_for(T, |l| l.contains("\"event\":\"sent\"")),
        "{:?}",
        ms[1].seen
    );
    assert!(
        !s.dir.join("m1.outbox").exists(),
        "the outbox file outlived its message"
    );
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// How long a member may take to give up on handshake refusals (20 s of grace, then it stops).
const HANDSHAKE_T: Duration = Duration::from_secs(60);

#[test]
fn a_key_the_relay_does_not_know_stops_after_a_bounded_retry() {
    let s = setup("outsider", 3);
    let _relay = start_relay(&s);
    let text = std::fs::read_to_string(&s.group).unwrap();
    // A key the relay's roster does not hold.
    let outsider = run(&["keygen", "--out", &p(&s.dir, "outsider.key")])
        .trim()
        .to_string();
    let other =
        text.clone() + &format!("\n[[member]]\nname = \"outsider\"\nkey = \"{outsider}\"\n");
    let other_path = p(&s.dir, "other.toml");
    std::fs::write(&other_path, other).unwrap();
    let mut out = Proc::start(
        "outsider",
        &[
            "member",
            "--group",
            &other_path,
            "--key",
            &p(&s.dir, "outsider.key"),
            "--json",
            "--new",
        ],
    );
    let code = out.wait_exit(HANDSHAKE_T);
    assert_eq!(code, Some(1), "{:?}", out.seen);
    let f = fatal_line(&out);
    assert!(f.contains("not in the roster"), "{f}");
    let tries = out
        .seen
        .iter()
        .filter(|l| l.contains("\"event\":\"connected\""))
        .count();
    // Backoff doubling to 2 s over the 20 s of grace: no reconnect loop.
    assert!(tries <= 20, "{tries} connections before stopping");

    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn a_relay_with_another_key_stops_the_member_after_a_bounded_retry() {
    let s = setup("relaykey", 3);
    let _relay = start_relay(&s);
    let text = std::fs::read_to_string(&s.group).unwrap();
    // A group file naming another relay key.
    let wrong = run(&["keygen", "--out", &p(&s.dir, "wrong-relay.key")])
        .trim()
        .to_string();
    let gf = dcnet::config::GroupFile::parse(&text, Path::new(&s.group)).unwrap();
    let relay_key = gf.group.relay_key().to_string();
    let wrong_path = p(&s.dir, "wrong-relay.toml");
    std::fs::write(&wrong_path, text.replace(&relay_key, &wrong)).unwrap();
    let mut m2 = start_member_with(&s, 2, &wrong_path, true);
    let code = m2.wait_exit(HANDSHAKE_T);
    assert_eq!(code, Some(1), "{:?}", m2.seen);
    let f = fatal_line(&m2);
    assert!(
        f.contains("relay's key differs") && f.contains(&relay_key) && f.contains(&wrong),
        "{f}"
    );

    let _ = std::fs::remove_dir_all(&s.dir);
}

/// `dcnet relay --transcript FILE`: every frame the relay received and sent, as on the wire
/// (docs/PROTOCOL.md §12.1), readable by its owner only and never overwritten.
#[test]
fn the_relay_transcript_holds_every_frame_as_on_the_wire() {
    use dcnet::wire::{Body, Sender, decode_frame};
    let s = setup("transcript", 3);
    let path = p(&s.dir, "relay.transcript");
    let mut relay = relay_proc(&s, &["--transcript", &path]);
    assert!(relay.wait_for(T, |l| l.contains("relay listening")));
    let mut ms: Vec<Proc> = (0..3).map(|i| start_member(&s, i, true)).collect();
    for m in ms.iter_mut() {
        joined(m);
    }
    ms[0].send_line("on the record");
    {
        let mut refs: Vec<&mut Proc> = ms.iter_mut().collect();
        all_deliver(&mut refs, "on the record");
    }
    signal(&relay, "-TERM");
    assert_eq!(relay.wait_exit(Duration::from_secs(10)), Some(0));
    let bytes = std::fs::read(&path).expect("the transcript");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "transcript mode {mode:o}");
    }
    assert_eq!(&bytes[..8], b"dcnetRT1");
    let (mut at, mut received, mut sent, mut hellos, mut last_t) = (8usize, 0, 0, 0, 0u64);
    while at < bytes.len() {
        let dir = bytes[at];
        let member = u32::from_le_bytes(bytes[at + 1..at + 5].try_into().unwrap());
        let t = u64::from_le_bytes(bytes[at + 5..at + 13].try_into().unwrap());
        let len = u32::from_be_bytes(bytes[at + 13..at + 17].try_into().unwrap()) as usize;
        let frame = &bytes[at + 17..at + 17 + len];
        at += 17 + len;
        assert!(member < 3 && dir <= 1 && t >= last_t, "record header");
        last_t = t;
        let f = decode_frame(frame).expect("every recorded frame decodes");
        if dir == 0 {
            received += 1;
            assert_eq!(f.header.sender, Sender::Member(member));
            hellos += usize::from(matches!(f.body, Body::Hello(_)));
        } else {
            sent += 1;
            assert_eq!(f.header.sender, Sender::Relay);
        }
    }
    assert_eq!(at, bytes.len(), "no partial record");
    assert!(hellos >= 3, "every member's Hello is recorded");
    assert!(
        received > 10 && sent > 10,
        "{received} received, {sent} sent"
    );
    // Never overwritten.
    let mut again = relay_proc(&s, &["--transcript", &path]);
    assert_eq!(again.wait_exit(Duration::from_secs(10)), Some(1));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let _ = std::fs::remove_dir_all(&s.dir);
}
