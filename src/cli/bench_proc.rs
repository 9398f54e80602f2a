//! `dcnet bench --idle` and `dcnet bench --soak`: a real group of processes (one `dcnet relay`
//! and N `dcnet member`s started from this binary, on 127.0.0.1), measured from outside through
//! /proc: CPU per process while the group idles at its pace, and resident memory over a long run.
//! Linux only (it reads /proc).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One child process and its stdout lines.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn start(name: &str, args: &[String]) -> Result<Proc, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines: rx,
        })
    }

    /// Waits until a line contains `needle`.
    fn wait_for(&self, needle: &str, within: Duration) -> Result<(), String> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return Ok(()),
                Ok(_) => {}
                Err(_) => {
                    return Err(format!(
                        "{} did not print {needle:?} within {} s",
                        self.name,
                        within.as_secs()
                    ));
                }
            }
        }
    }

    fn drain(&self) -> usize {
        let mut n = 0;
        while self.lines.try_recv().is_ok() {
            n += 1;
        }
        n
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time a process has used: the sum over its threads of /proc/PID/task/TID/schedstat
/// (nanoseconds on a CPU; /proc/PID/schedstat alone counts the main thread only).
pub(super) fn cpu_time(pid: u32) -> Result<Duration, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir} (Linux only): {e}"))?;
    let mut ns = 0u64;
    for t in tasks.flatten() {
        // A thread may end between the listing and the read: skip it.
        let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        let v: u64 = s
            .split_whitespace()
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("unexpected {}: {s:?}", t.path().display()))?;
        ns = ns.saturating_add(v);
    }
    Ok(Duration::from_nanos(ns))
}

/// Resident memory of a process in KiB, from /proc/PID/status.
fn rss_kib(pid: u32) -> Result<u64, String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status (Linux only): {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// The round a member's state file has reserved up to (it moves every 64 rounds).
fn state_round(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("round ").and_then(|r| r.parse().ok()))
        })
        .unwrap_or(0)
}

/// A relay and `n` members, started and joined.
struct Group {
    dir: PathBuf,
    relay: Proc,
    members: Vec<Proc>,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.members.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run_ok(args: &[String]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "dcnet {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn start_group(n: usize, round_ms: u64, tag: &str) -> Result<Group, String> {
    let dir = std::env::temp_dir().join(format!("dcnet-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let relay_key = run_ok(&["keygen".into(), "--out".into(), path("relay.key")])?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut args: Vec<String> = [
        "group",
        "new",
        "--name",
        "bench",
        "--relay",
        &format!("127.0.0.1:{port}"),
        "--relay-key",
        &relay_key,
        "--round-ms",
        &round_ms.to_string(),
        "--out",
        &path("group.toml"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..n {
        let k = run_ok(&["keygen".into(), "--out".into(), path(&format!("m{i}.key"))])?;
        args.push("--member".into());
        args.push(format!("m{i}={k}"));
    }
    run_ok(&args)?;
    let relay = Proc::start(
        "relay",
        &[
            "relay".into(),
            "--group".into(),
            path("group.toml"),
            "--key".into(),
            path("relay.key"),
        ],
    )?;
    relay.wait_for("relay listening", Duration::from_secs(20))?;
    let mut members = Vec::new();
    for i in 0..n {
        members.push(Proc::start(
            &format!("m{i}"),
            &[
                "member".into(),
                "--group".into(),
                path("group.toml"),
                "--key".into(),
                path(&format!("m{i}.key")),
                "--new".into(),
                "--json".into(),
                "--stay".into(),
            ],
        )?);
    }
    for m in &members {
        m.wait_for("\"event\":\"epoch\"", Duration::from_secs(30))?;
    }
    Ok(Group {
        dir,
        relay,
        members,
    })
}

/// `dcnet bench --idle SECONDS`: an idle group of `n` at the default pace; CPU per process.
pub fn idle(n: usize, round_ms: u64, seconds: f64, json: bool) -> Result<(), String> {
    let g = start_group(n, round_ms, "idle")?;
    // Let the first epoch settle.
    std::thread::sleep(Duration::from_secs(2));
    let pids: Vec<u32> = std::iter::once(g.relay.pid())
        .chain(g.members.iter().map(|m| m.pid()))
        .collect();
    let before: Vec<Duration> = pids
        .iter()
        .map(|&p| cpu_time(p))
        .collect::<Result<_, _>>()?;
    let r0 = state_round(&g.dir.join("m0.state"));
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let wall = t0.elapsed().as_secs_f64();
    let after: Vec<Duration> = pids
        .iter()
        .map(|&p| cpu_time(p))
        .collect::<Result<_, _>>()?;
    let r1 = state_round(&g.dir.join("m0.state"));
    let pct: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| (a.saturating_sub(*b)).as_secs_f64() / wall * 100.0)
        .collect();
    let members = &pct[1..];
    let worst = members.iter().copied().fold(0.0, f64::max);
    let mean = members.iter().sum::<f64>() / members.len().max(1) as f64;
    let printed = g.members.iter().map(|m| m.drain()).sum::<usize>();
    // CPU per round from the rounds m0's state file moved: it moves in blocks of 64, so the
    // count is good to ± 64 rounds (run for a minute or more for a figure within a few %).
    let rounds = r1.saturating_sub(r0);
    let per_round = |p: f64| p / 100.0 * wall * 1000.0 / rounds.max(1) as f64;
    if json {
        println!(
            "{}",
            serde_json::json!({"mode": "idle", "members": n, "round_ms": round_ms,
                "seconds": wall, "relay_cpu_percent": pct[0],
                "member_cpu_percent": members, "member_cpu_percent_mean": mean,
                "member_cpu_percent_max": worst,
                "state_file_round_moved": rounds, "lines_printed": printed,
                "relay_cpu_ms_per_round": per_round(pct[0]),
                "member_cpu_ms_per_round_mean": per_round(mean)})
        );
    } else {
        println!("idle group of {n} members at round_ms = {round_ms}, measured for {wall:.1} s:");
        println!("  relay:   {:.2} % of a core", pct[0]);
        println!(
            "  members: {mean:.2} % of a core on average, {worst:.2} % at most (goal: at most 1 %)"
        );
        println!(
            "  m0's state file reservation moved {} rounds ({:.1} rounds/s at most; one write per 64 rounds)",
            rounds,
            rounds as f64 / wall
        );
        if rounds > 0 {
            println!(
                "  CPU per round (± 64 rounds of {rounds}): relay {:.2} ms, member {:.2} ms on \
                 average (QUIC, TLS and tokio included)",
                per_round(pct[0]),
                per_round(mean)
            );
        }
    }
    Ok(())
}

/// `dcnet bench --soak ROUNDS`: a group of `n` as fast as it can go, member 0 sending a line
/// every 50 ms; resident memory of every process sampled from round 500 to `rounds`.
pub fn soak(n: usize, rounds: u64, json: bool) -> Result<(), String> {
    let mut g = start_group(n, 0, "soak")?;
    let state = g.dir.join("m0.state");
    let pids: Vec<u32> = std::iter::once(g.relay.pid())
        .chain(g.members.iter().map(|m| m.pid()))
        .collect();
    let t0 = Instant::now();
    let mut first: Option<(u64, Vec<u64>)> = None;
    let mut last: Vec<u64> = Vec::new();
    let mut peak: Vec<u64> = vec![0; pids.len()];
    let mut sent = 0u64;
    let mut next_sample = Instant::now();
    let limit = Duration::from_secs(3600);
    loop {
        let r = state_round(&state);
        if Instant::now() >= next_sample {
            next_sample += Duration::from_secs(2);
            let s: Vec<u64> = pids.iter().map(|&p| rss_kib(p)).collect::<Result<_, _>>()?;
            for (p, v) in peak.iter_mut().zip(&s) {
                *p = (*p).max(*v);
            }
            if first.is_none() && r >= 500 {
                first = Some((r, s.clone()));
            }
            last = s;
            if !json {
                eprint!("\r  round ≈ {r} of {rounds}   ");
            }
        }
        if r >= rounds {
            break;
        }
        if t0.elapsed() > limit {
            return Err(format!("the group reached only round {r} in an hour"));
        }
        if let Some(stdin) = g.members[0].stdin.as_mut() {
            sent += 1;
            writeln!(stdin, "soak line {sent}").map_err(|e| format!("m0's stdin: {e}"))?;
        }
        for m in &g.members {
            m.drain();
        }
        g.relay.drain();
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = t0.elapsed().as_secs_f64();
    let (r_first, first) = first.ok_or("the run ended before round 500")?;
    let growth: Vec<f64> = first
        .iter()
        .zip(&last)
        .map(|(a, b)| (*b as f64 - *a as f64) / (*a).max(1) as f64 * 100.0)
        .collect();
    let names: Vec<String> = std::iter::once("relay".to_string())
        .chain((0..n).map(|i| format!("m{i}")))
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({"mode": "soak", "members": n, "rounds": rounds, "seconds": wall,
                "from_round": r_first, "processes": names, "rss_kib_first": first,
                "rss_kib_last": last, "rss_kib_peak": peak, "growth_percent": growth,
                "lines_sent": sent})
        );
    } else {
        eprintln!();
        println!(
            "soak: {n} members, rounds {r_first} → {rounds} in {wall:.0} s, m0 sent {sent} lines; resident memory (KiB):"
        );
        for (i, name) in names.iter().enumerate() {
            println!(
                "  {name:>6}: {:>8} → {:>8} (peak {:>8}): {:+.1} % (goal: under 10 %)",
                first[i], last[i], peak[i], growth[i]
            );
        }
    }
    Ok(())
}
