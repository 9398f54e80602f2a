//! `dcnet keygen`, `dcnet group new`, `dcnet relay`, `dcnet member`: what a real group runs.

use super::words;
use crate::config::{self, GroupFile};
use crate::crypto::identity::PublicKey;
use crate::net::member::{FileStore, MemberNote};
use crate::params::{RosterEntry, RoundParams};
use crate::protocol::MemberEvent;
use crate::protocol::blame::Culprit;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

/// Options of `dcnet keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the secret key (mode 0600; never overwritten).
    #[arg(long)]
    pub out: PathBuf,
}

/// `dcnet key …`.
#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Print the public key of a secret key file (the line to give the group's organiser).
    Show(KeyShowArgs),
}

/// Options of `dcnet key show`.
#[derive(Args, Debug)]
pub struct KeyShowArgs {
    /// The secret key file (as written by `dcnet keygen`).
    pub file: PathBuf,
}

/// `dcnet group …`.
#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Write a new group file (roster, relay, round parameters) in TOML.
    New(Box<GroupNewArgs>),
    /// Print a group file for people: roster names and keys, every round parameter, the group
    /// id, the relay's address and key.
    Show(GroupShowArgs),
}

/// Options of `dcnet group show`.
#[derive(Args, Debug)]
pub struct GroupShowArgs {
    /// The group file.
    pub file: PathBuf,
}

/// Options of `dcnet group new`. Every round parameter has a flag; all of them are part of the
/// group id, so every member and the relay must use the same file.
#[derive(Args, Debug)]
pub struct GroupNewArgs {
    /// Group name.
    #[arg(long)]
    pub name: String,
    /// Where the relay listens, HOST:PORT.
    #[arg(long)]
    pub relay: String,
    /// The relay's public key (as printed by `dcnet keygen` or `dcnet key show`).
    #[arg(long)]
    pub relay_key: PublicKey,
    /// A member, NAME=PUBKEY; repeat for each member. Order fixes member indices.
    #[arg(long = "member", value_parser = parse_member, required = true)]
    pub members: Vec<(String, PublicKey)>,
    /// Reservation cells, at least 1 [default: four times the members: a reservation then
    /// wins ≈ 78 % of the time instead of ≈ 61 % with twice the members].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub cells: Option<u32>,
    /// Slots per round, at least 1 [default: one per member].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub slots: Option<u32>,
    /// Bytes per slot, framing included (64 to 65,602).
    #[arg(long, default_value_t = 256)]
    pub slot_bytes: u32,
    /// Probability of reserving a trap while a message is pending.
    #[arg(long, default_value_t = 0.2)]
    pub p_trap: f64,
    /// Probability that an idle member reserves a cover trap.
    #[arg(long, default_value_t = 1.0)]
    pub p_cover: f64,
    /// Tolerated shrinkage t of the anonymity set: a message goes out only while at least
    /// members − t of the roster are present; 0 means every member must be present [default:
    /// the floor is half the roster, at least 2].
    #[arg(long)]
    pub tolerance: Option<u32>,
    /// Completed rounds per epoch: then the epoch's keys and content key are erased and a new
    /// epoch starts (forward secrecy on a schedule; at least 2).
    #[arg(long, default_value_t = crate::params::DEFAULT_EPOCH_ROUNDS)]
    pub epoch_rounds: u64,
    /// The round period in ms: the relay opens a round every ROUND_MS whether or not anyone has
    /// something to send, so the timing of rounds tells nothing. 0 = as fast as the group can
    /// go (busy all the time).
    #[arg(long, default_value_t = 500)]
    pub round_ms: u64,
    /// The relay's pause after each round before the next one (ms): the window for
    /// accusations. 0 = no pause.
    #[arg(long, default_value_t = 0)]
    pub post_round_ms: u64,
    /// Relay deadline for epoch keys, from the epoch request (ms, at least 1).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys_ms: u64,
    /// The commit, reveal and unblind deadlines at the relay, in ms (at least 1); each can be
    /// set on its own with --commit-ms, --reveal-ms, --unblind-ms.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline_ms: u64,
    /// Relay deadline for commitments, from the round's Open (ms) [default: --deadline-ms].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub commit_ms: Option<u64>,
    /// Relay deadline for reveals, from the CommitSet (ms) [default: --deadline-ms].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub reveal_ms: Option<u64>,
    /// Relay deadline for blinding seeds, from the Record (ms) [default: --deadline-ms].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub unblind_ms: Option<u64>,
    /// Most fragments (slots) one message may take (1 to 65,535).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_fragments: u16,
    /// Where to write the group file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the file at --out if it exists (by default an existing file is never
    /// overwritten: a group file changed under a running group splits it).
    #[arg(long)]
    pub force: bool,
}

fn parse_member(s: &str) -> Result<(String, PublicKey), String> {
    let (name, key) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=PUBKEY"))?;
    Ok((name.to_string(), key.parse()?))
}

/// Options of `dcnet relay`.
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// The group file.
    #[arg(long)]
    pub group: PathBuf,
    /// The relay's secret key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Address to listen on (default: the group file's relay address).
    #[arg(long)]
    pub listen: Option<String>,
    /// Write every frame the relay receives and sends to this new file (docs/PROTOCOL.md
    /// §12.1), for auditing what a relay sees. Never overwrites; mode 0600.
    #[arg(long)]
    pub transcript: Option<PathBuf>,
}

/// Options of `dcnet member`.
#[derive(Args, Debug)]
pub struct MemberArgs {
    /// The group file.
    #[arg(long)]
    pub group: PathBuf,
    /// This member's secret key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The member's state file: the highest round and epoch it acted in (default: KEY.state).
    /// It must exist, unless --new is given; losing it could make the member sign a round
    /// twice and be convicted, so keep it with the key.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// This key has never joined the group: start with an empty state file (refused if the
    /// state file exists). Never pass it when restarting a member that has run before.
    #[arg(long)]
    pub new: bool,
    /// One JSON object per line on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// The outbox file: messages typed but not yet completely out, kept across a crash and
    /// sent after a restart (default: the state file with extension `.outbox`; mode 0600).
    #[arg(long)]
    pub outbox: Option<PathBuf>,
    /// Append every message shown to this file, one JSON object per line, as `--json` prints
    /// it (round, slot, text; a pseudonym's name and key; for a private message to you its
    /// number, and its writer only where you wrote to them first). Never a sender of a post.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Write an evidence bundle into this directory for every conviction this member reaches
    /// (created if missing; files are never overwritten). Check one with `dcnet
    /// verify-evidence --group GROUP FILE`.
    #[arg(long, value_name = "DIR")]
    pub evidence_dir: Option<PathBuf>,
    /// Keep taking part after stdin ends (by default the member leaves once its queued
    /// messages are out).
    #[arg(long)]
    pub stay: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn fail(cmd: &str, e: impl std::fmt::Display) -> i32 {
    eprintln!("dcnet {cmd}: {e}");
    1
}

/// `dcnet keygen`.
pub fn keygen(a: &KeygenArgs) -> i32 {
    match config::write_new_key(&a.out) {
        Ok(public) => {
            eprintln!(
                "secret key written to {} (keep it private)",
                a.out.display()
            );
            println!("{public}");
            0
        }
        Err(e) => fail("keygen", e),
    }
}

/// `dcnet key show`.
pub fn key_show(a: &KeyShowArgs) -> i32 {
    match config::read_key(&a.file) {
        Ok(key) => {
            println!("{}", key.public());
            0
        }
        Err(e) => fail("key show", e),
    }
}

/// `dcnet group new`.
pub fn group_new(a: &GroupNewArgs) -> i32 {
    let members = a
        .members
        .iter()
        .map(|(name, key)| RosterEntry {
            name: name.clone(),
            key: *key,
        })
        .collect();
    let params = RoundParams {
        // Four cells per member: 8·4N bytes per round buy a reservation success of
        // (1 − 1/4N)^(N−1) ≈ e^−¼ ≈ 0.78 (0.61 at 2N, the library default), so fewer
        // reservation rounds per message (issue 12: median latency at N = 10, 20 ms one way,
        // 345 → 254 ms in the simulator).
        cells: a
            .cells
            .unwrap_or_else(|| 4u32.saturating_mul(a.members.len() as u32)),
        slots: a.slots.unwrap_or(0),
        slot_bytes: a.slot_bytes,
        p_trap: a.p_trap,
        p_cover: a.p_cover,
        keys_ms: a.keys_ms,
        commit_ms: a.commit_ms.unwrap_or(a.deadline_ms),
        reveal_ms: a.reveal_ms.unwrap_or(a.deadline_ms),
        unblind_ms: a.unblind_ms.unwrap_or(a.deadline_ms),
        post_round_ms: a.post_round_ms,
        round_ms: a.round_ms,
        max_fragments: a.max_fragments,
        tolerance: a.tolerance.unwrap_or(crate::params::AUTO_TOLERANCE),
        epoch_rounds: a.epoch_rounds,
    };
    let gf = match GroupFile::new(&a.name, &a.relay, a.relay_key, members, params) {
        Ok(g) => g,
        Err(e) => return fail("group new", e),
    };
    if let Err(e) = config::write_group_file(&a.out, &gf, a.force) {
        return fail("group new", e);
    }
    println!(
        "group {} with {} members written to {} (group id {}); check it with `dcnet group show {}`",
        gf.group.name(),
        gf.group.size(),
        a.out.display(),
        hex::encode(gf.group.id()),
        a.out.display()
    );
    0
}

/// `dcnet group show`.
pub fn group_show(a: &GroupShowArgs) -> i32 {
    match GroupFile::read(&a.file) {
        Ok(gf) => {
            print!("{}", describe_group(&gf));
            0
        }
        Err(e) => fail("group show", e),
    }
}

/// A group file in words: what `dcnet group show` prints.
pub fn describe_group(gf: &GroupFile) -> String {
    use std::fmt::Write;
    let g = &gf.group;
    let p = g.params();
    let n = g.size();
    let floor = n.saturating_sub(p.tolerance as usize).max(2);
    let mut s = String::new();
    let _ = writeln!(s, "group {}", g.name());
    let _ = writeln!(s, "group id   {}", hex::encode(g.id()));
    let _ = writeln!(s, "relay      {}", gf.relay_addr);
    let _ = writeln!(s, "relay key  {}", g.relay_key());
    let _ = writeln!(s, "{n} members (in roster order):");
    let width = g.members().iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in g.members() {
        let _ = writeln!(s, "  {:<width$}  {}", m.name, m.key);
    }
    let ms = |v: u64| format!("{v} ms");
    let pace = if p.round_ms == 0 {
        "0 (as fast as the group can go)".to_string()
    } else {
        format!(
            "{} ms (a round every {} ms, busy or idle)",
            p.round_ms, p.round_ms
        )
    };
    let rows: Vec<(&str, String)> = vec![
        ("round_ms", pace),
        ("cells", format!("{} reservation cells", p.cells)),
        ("slots", format!("{} slots per round", p.slots)),
        (
            "slot_bytes",
            format!(
                "{} bytes per slot ({} of message text)",
                p.slot_bytes,
                p.slot_bytes.saturating_sub(crate::params::SLOT_OVERHEAD)
            ),
        ),
        ("round vector", format!("{} bytes", p.vector_len())),
        ("p_trap", format!("{}", p.p_trap)),
        ("p_cover", format!("{}", p.p_cover)),
        (
            "tolerance",
            format!(
                "{} (a message goes out only while at least {} of the {n} members are present: \
                 the floor {floor}{})",
                p.tolerance,
                if floor < n { floor + 1 } else { floor },
                if floor < n {
                    " and one to spare against an accusation"
                } else {
                    ""
                }
            ),
        ),
        (
            "max_fragments",
            format!("{} slots per message at most", p.max_fragments),
        ),
        (
            "epoch_rounds",
            format!(
                "{} rounds per epoch (then its keys and content key are erased)",
                p.epoch_rounds
            ),
        ),
        ("keys_ms", ms(p.keys_ms)),
        ("commit_ms", ms(p.commit_ms)),
        ("reveal_ms", ms(p.reveal_ms)),
        ("unblind_ms", ms(p.unblind_ms)),
        (
            "post_round_ms",
            if p.post_round_ms == 0 {
                "0 ms (no pause after a round)".to_string()
            } else {
                ms(p.post_round_ms)
            },
        ),
    ];
    let _ = writeln!(s, "parameters:");
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<14} {v}");
    }
    s
}

/// `dcnet relay`.
pub fn relay(a: &RelayArgs) -> i32 {
    let res = (|| -> Result<(), String> {
        let gf = GroupFile::read(&a.group).map_err(|e| e.to_string())?;
        let key = config::read_key(&a.key).map_err(|e| e.to_string())?;
        if &key.public() != gf.group.relay_key() {
            return Err(format!(
                "{} is not the relay key named in {}",
                a.key.display(),
                a.group.display()
            ));
        }
        let listen = match &a.listen {
            Some(l) => l.parse().map_err(|e| format!("--listen {l}: {e}"))?,
            None => gf.relay_socket()?,
        };
        let transcript = match &a.transcript {
            Some(p) => Some(crate::net::relay::Transcript::create(p)?),
            None => None,
        };
        let rt = runtime()?;
        rt.block_on(async move {
            let group = Arc::new(gf.group.clone());
            let mut h =
                crate::net::relay::spawn_with_transcript(group, key, listen, vec![], transcript)
                    .await?;
            let mut printer = RelayPrinter {
                group: gf.group.clone(),
                stalled: None,
            };
            println!(
                "relay listening on {} for group {}",
                h.local_addr,
                gf.group.name()
            );
            let mut term = terminate_signal()?;
            loop {
                tokio::select! {
                    e = h.events.recv() => match e {
                        Some(e) => printer.print(&e),
                        None => break,
                    },
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                }
            }
            println!("relay shutting down");
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), h.shutdown()).await;
            Ok::<(), String>(())
        })
    })();
    match res {
        Ok(()) => 0,
        Err(e) => fail("relay", e),
    }
}

/// Prints the relay's events for people (roster names, plain words). A stall is told once
/// per change in the number of members available, not at every retry.
struct RelayPrinter {
    group: crate::params::Group,
    stalled: Option<usize>,
}

impl RelayPrinter {
    fn print(&mut self, e: &crate::protocol::RelayEvent) {
        use crate::protocol::RelayEvent as E;
        use crate::protocol::relay::Absence;
        let g = &self.group;
        match e {
            E::EpochStarted { epoch, members } => {
                self.stalled = None;
                println!(
                    "epoch {epoch}: {} of {} members present ({})",
                    members.len(),
                    g.size(),
                    words::names(g, members)
                )
            }
            E::Excluded {
                member,
                reason,
                round,
            } => match reason {
                Absence::Absent => println!(
                    "{} is absent from round {round} on (missed a deadline; nothing is held \
                     against them)",
                    words::name(g, *member)
                ),
                Absence::Unresponsive => println!(
                    "{} is excluded as unresponsive from round {round} until the next epoch \
                     (committed, then withheld a reveal or blinding seed)",
                    words::name(g, *member)
                ),
            },
            E::Verdict { verdict, .. } => {
                let convicted = match &verdict.culprit {
                    Some(c) => format!("{} convicted", words::culprit(g, c)),
                    None => "nobody convicted".to_string(),
                };
                let unresponsive = if verdict.unresponsive.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; excluded as unresponsive: {}",
                        words::names(g, &verdict.unresponsive)
                    )
                };
                println!(
                    "verdict in round {}: {convicted} (rule {}){unresponsive}",
                    verdict.round,
                    verdict.rule.name()
                )
            }
            E::Stalled { available } if self.stalled != Some(*available) => {
                self.stalled = Some(*available);
                println!(
                    "waiting: {} available, a round needs at least 2",
                    match available {
                        0 => "no member is".to_string(),
                        1 => "only 1 member is".to_string(),
                        k => format!("{k} members are"),
                    }
                );
            }
            _ => {}
        }
    }
}

/// `dcnet member`. Exit status: 0 when it left as asked (Ctrl-C, SIGTERM, or stdin ended and
/// every queued message is out), 1 on an error (a configuration the relay refuses, a relay that
/// broke the protocol, an unusable state or outbox file), 2 for bad command-line usage.
pub fn member(a: &MemberArgs) -> i32 {
    let res = (|| -> Result<(), String> {
        let gf = GroupFile::read(&a.group).map_err(|e| e.to_string())?;
        let key = config::read_key(&a.key).map_err(|e| e.to_string())?;
        let me = gf.index_of(&key.public()).ok_or_else(|| {
            format!(
                "the key in {} is not in the roster of {}",
                a.key.display(),
                a.group.display()
            )
        })?;
        let state = a
            .state
            .clone()
            .unwrap_or_else(|| a.key.with_extension("state"));
        let outbox = a
            .outbox
            .clone()
            .unwrap_or_else(|| state.with_extension("outbox"));
        let store = if a.new {
            FileStore::create_new(state)?
        } else {
            FileStore::open(state)?
        };
        let mut history = match &a.history {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("cannot open the history file {}: {e}", p.display()))?,
            ),
            None => None,
        };
        if let Some(d) = &a.evidence_dir {
            std::fs::create_dir_all(d).map_err(|e| {
                format!("cannot create the evidence directory {}: {e}", d.display())
            })?;
        }
        let evidence = a.evidence_dir.clone().map(|d| (d, a.group.clone()));
        let relay_addr = gf.relay_socket()?;
        let json = a.json;
        let stay = a.stay;
        let rt = runtime()?;
        let res = rt.block_on(async move {
            let group = Arc::new(gf.group.clone());
            let mut printer = NotePrinter::new(group.clone(), json, evidence);
            printer.chat = Some(super::chat::ChatCli::new(
                group.clone(),
                me,
                &key,
                config::os_random32(),
            ));
            let relay_key = *gf.group.relay_key();
            let mut h = crate::net::member::spawn(
                group,
                relay_addr,
                relay_key,
                key,
                me,
                Box::new(store),
                config::os_random32(),
                crate::net::member::MemberOptions {
                    faults: vec![],
                    outbox: Some(outbox),
                    // Pseudonym and reply keys live in memory only: their links die with them.
                    keep_idle_links: false,
                },
            )
            .await?;
            // Typed lines go to the loop below, which turns them into messages (it holds the
            // mailbox and pseudonym state); the end of input closes the channel.
            let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<String>(64);
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line_tx.send(line).await.is_err() {
                        break;
                    }
                }
            });
            if !json {
                println!(
                    "you are {} in group {} ({} members); type a line to send it anonymously \
                     (/help for private messages and pseudonyms)",
                    words::name(&gf.group, me),
                    gf.group.name(),
                    gf.group.size()
                );
            }
            let mut term = terminate_signal()?;
            let mut fatal = None;
            let mut input_done = false;
            loop {
                tokio::select! {
                    n = h.notes.recv() => match n {
                        Some(n) => {
                            printer.print(&n);
                            if let (Some(f), Some(line)) = (history.as_mut(), printer.history.take()) {
                                use std::io::Write;
                                if let Err(e) = writeln!(f, "{line}") {
                                    eprintln!("dcnet member: cannot append to the history file: {e}");
                                }
                            }
                            match n {
                                MemberNote::Fatal(e) => {
                                    fatal = Some(e);
                                    break;
                                }
                                MemberNote::Drained => break,
                                _ => {}
                            }
                        }
                        None => break,
                    },
                    l = line_rx.recv(), if !input_done => match l {
                        Some(line) => {
                            if let Some(sub) = printer.chat_input(&line) {
                                if h.submit.send(sub).await.is_err() {
                                    break;
                                }
                            }
                        }
                        None => {
                            input_done = true;
                            if !stay {
                                h.drain();
                            }
                        }
                    },
                    _ = tokio::signal::ctrl_c() => break,
                    _ = term.recv() => break,
                }
            }
            // Ctrl-C or SIGTERM: close the connection (the relay is told) and end, bounded.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(1500), h.shutdown()).await;
            match fatal {
                Some(e) => Err(e),
                None => Ok::<(), String>(()),
            }
        });
        // The stdin reader may be blocked in a read: do not wait for it.
        rt.shutdown_background();
        res
    })();
    match res {
        Ok(()) => 0,
        Err(e) => fail("member", e),
    }
}

/// SIGTERM (where the platform has it).
struct Terminate(#[cfg(unix)] tokio::signal::unix::Signal);

impl Terminate {
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            self.0.recv().await;
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    }
}

fn terminate_signal() -> Result<Terminate, String> {
    #[cfg(unix)]
    {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map(Terminate)
            .map_err(|e| format!("cannot listen for SIGTERM: {e}"))
    }
    #[cfg(not(unix))]
    Ok(Terminate())
}

/// Turns a member's notes into lines for people (roster names, plain words) or JSON objects,
/// and writes an evidence bundle per conviction when asked. Hold-back notices are printed once
/// per message and again only when the reason or the numbers change; a message that waits
/// because no round is running (the member is alone, or nearly) is told so once.
struct NotePrinter {
    group: Arc<crate::params::Group>,
    json: bool,
    /// Where to write evidence bundles, and the group file to check them against.
    evidence: Option<(PathBuf, PathBuf)>,
    /// The last hold-back notice per ticket: (reason, anonymity, floor).
    held: std::collections::BTreeMap<u64, (String, usize, usize)>,
    /// Tickets queued and not yet out.
    pending: std::collections::BTreeSet<u64>,
    /// Tickets already told that no round is running.
    told_waiting: std::collections::BTreeSet<u64>,
    /// Members taking part, as far as this member knows (None: not in an epoch).
    present: Option<std::collections::BTreeSet<u32>>,
    /// Rounds are running (an epoch started or a round completed since the last abort that
    /// left fewer than two members, or the last connection change).
    running: bool,
    convictions: usize,
    /// Lines (or JSON objects) printed so far.
    printed: usize,
    /// Private messages and pseudonyms (`dcnet member`); without it delivered messages are
    /// shown as text.
    chat: Option<super::chat::ChatCli>,
    /// What the notices about each submission still in the driver's hands call it, oldest
    /// first (one Queued or Refused note comes back per submission, in order).
    labels: std::collections::VecDeque<(String, Option<u32>)>,
    /// The history line for the last delivered message shown, for `--history`.
    history: Option<serde_json::Value>,
}

impl NotePrinter {
    fn new(
        group: Arc<crate::params::Group>,
        json: bool,
        evidence: Option<(PathBuf, PathBuf)>,
    ) -> NotePrinter {
        NotePrinter {
            group,
            json,
            evidence,
            held: Default::default(),
            pending: Default::default(),
            told_waiting: Default::default(),
            present: None,
            running: false,
            convictions: 0,
            printed: 0,
            chat: None,
            labels: Default::default(),
            history: None,
        }
    }

    /// A typed line: the submission to hand the driver, if any (a notice otherwise).
    fn chat_input(&mut self, line: &str) -> Option<crate::net::member::Submission> {
        use super::chat::Input;
        let input = match self.chat.as_mut() {
            Some(c) => c.input(line),
            None if line.is_empty() => Input::Nothing,
            None => Input::Send {
                sub: line.as_bytes().to_vec().into(),
                label: "message".into(),
                answers: None,
            },
        };
        match input {
            Input::Send {
                sub,
                label,
                answers,
            } => {
                self.labels.push_back((label, answers));
                Some(sub)
            }
            Input::Say(s) => {
                self.emit(
                    Some(s.clone()),
                    serde_json::json!({"event": "notice", "text": s}),
                );
                None
            }
            Input::Nothing => None,
        }
    }

    /// The anonymity floor in members: |roster| − tolerance, at least 2.
    fn floor(&self) -> usize {
        let n = self.group.size();
        n.saturating_sub(self.group.params().tolerance as usize)
            .max(2)
    }

    fn emit(&mut self, text: Option<String>, j: serde_json::Value) {
        if self.json {
            println!("{j}");
            self.printed += 1;
        } else if let Some(t) = text {
            println!("{t}");
            self.printed += 1;
        }
    }

    /// Tells every pending message not yet told that it waits because no round can run.
    fn tell_waiting(&mut self) {
        if self.running {
            return;
        }
        let tickets: Vec<u64> = self
            .pending
            .iter()
            .filter(|t| !self.told_waiting.contains(t))
            .copied()
            .collect();
        for ticket in tickets {
            self.told_waiting.insert(ticket);
            let floor = self.floor();
            let n = self.group.size();
            self.emit(
                Some(format!(
                    "holding back message #{ticket}: no round is running (you may be the only \
                     member connected); it goes out once at least {floor} of the {n} members \
                     are present"
                )),
                serde_json::json!({"event": "held_back", "ticket": ticket, "round": null,
                    "reason": "no round is running", "anonymity": null, "floor": floor,
                    "roster": n}),
            );
        }
    }

    fn write_evidence(
        &mut self,
        verdict: &crate::protocol::blame::Verdict,
        case: &crate::protocol::blame::Case,
    ) {
        let Some((dir, group_file)) = &self.evidence else {
            return;
        };
        let Some(c) = &verdict.culprit else { return };
        let who = match c {
            Culprit::Member(i) => {
                let name: String = words::name(&self.group, *i)
                    .chars()
                    .map(|ch| {
                        if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                            ch
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("member{i}-{name}")
            }
            Culprit::Relay => "relay".to_string(),
        };
        let bytes = crate::protocol::blame::encode_evidence(case);
        let base = format!("conviction-round{}-{who}", verdict.round);
        // Never overwrite: a second bundle for the same round and culprit gets a number.
        let mut written = None;
        for k in 0..1000u32 {
            let file = if k == 0 {
                format!("{base}.evidence")
            } else {
                format!("{base}-{k}.evidence")
            };
            let path = dir.join(file);
            let res = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|mut f| {
                    use std::io::Write;
                    f.write_all(&bytes)?;
                    f.sync_all()
                });
            match res {
                Ok(()) => {
                    written = Some(Ok(path));
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    written = Some(Err(format!("{}: {e}", path.display())));
                    break;
                }
            }
        }
        match written {
            Some(Ok(path)) => {
                self.convictions += 1;
                self.emit(
                    Some(format!(
                        "evidence written to {} (check it with `dcnet verify-evidence --group {} {}`)",
                        path.display(),
                        group_file.display(),
                        path.display()
                    )),
                    serde_json::json!({"event": "evidence", "file": path.display().to_string(),
                        "round": verdict.round}),
                );
            }
            Some(Err(e)) => eprintln!("dcnet member: cannot write the evidence bundle {e}"),
            None => eprintln!(
                "dcnet member: cannot write the evidence bundle: too many files named {base}-*.evidence in {}",
                dir.display()
            ),
        }
    }

    fn print(&mut self, n: &MemberNote) {
        use serde_json::json;
        let g = self.group.clone();
        let size = g.size();
        let (text, j) = match n {
            MemberNote::Connected => {
                self.present = None;
                self.running = false;
                (
                    Some("connected to the relay".to_string()),
                    json!({"event": "connected"}),
                )
            }
            MemberNote::Disconnected(r) => {
                self.present = None;
                self.running = false;
                (
                    Some(format!("relay unreachable ({r}); retrying")),
                    json!({"event": "disconnected", "reason": r}),
                )
            }
            MemberNote::Queued { ticket, pending } => {
                self.pending.insert(*ticket);
                let label = self
                    .labels
                    .pop_front()
                    .map_or_else(|| "message".into(), |(l, _)| l);
                self.emit(
                    Some(format!(
                        "queued {label} as #{ticket} ({pending} waiting or in flight)"
                    )),
                    json!({"event": "queued", "ticket": ticket, "pending": pending,
                           "what": label}),
                );
                self.tell_waiting();
                return;
            }
            // The error itself goes to stderr once, as the command's error; in text mode it is
            // not repeated on stdout.
            MemberNote::Fatal(r) => (None, json!({"event": "fatal", "reason": r})),
            MemberNote::Refused(r) => {
                let (label, answers) = self
                    .labels
                    .pop_front()
                    .unwrap_or_else(|| ("message".into(), None));
                if let (Some(n), Some(c)) = (answers, self.chat.as_mut()) {
                    c.refused(n);
                }
                (
                    Some(format!("{label} not sent: {r}")),
                    json!({"event": "refused", "reason": r, "what": label}),
                )
            }
            MemberNote::Restored { tickets } => {
                self.pending.extend(tickets.iter().copied());
                (
                    Some(format!(
                        "{} from before the last stop {} queued again and go out first",
                        match tickets.len() {
                            1 => "1 message".to_string(),
                            k => format!("{k} messages"),
                        },
                        if tickets.len() == 1 { "is" } else { "are" }
                    )),
                    json!({"event": "restored", "tickets": tickets}),
                )
            }
            MemberNote::Draining { pending } => (
                Some(format!(
                    "input ended: leaving once the {pending} queued message(s) are out (Ctrl-C leaves now; they stay in the outbox)"
                )),
                json!({"event": "draining", "pending": pending}),
            ),
            MemberNote::Drained => (
                Some("every queued message is out; leaving".to_string()),
                json!({"event": "drained"}),
            ),
            MemberNote::Event(e) => match e {
                MemberEvent::Delivered {
                    round,
                    slot,
                    message,
                } => {
                    let shown = match self.chat.as_mut() {
                        Some(c) => c.delivered(*round, *slot, message),
                        None => {
                            let t = String::from_utf8_lossy(message).into_owned();
                            Some((
                                format!("[round {round}, slot {slot}] {t}"),
                                json!({"event": "delivered", "round": round, "slot": slot,
                                       "text": t}),
                            ))
                        }
                    };
                    // A sealed message for another member: nothing to show, nothing to keep.
                    let Some((t, j)) = shown else {
                        return;
                    };
                    self.history = Some(j.clone());
                    (Some(t), j)
                }
                MemberEvent::EpochStarted { epoch, members } => {
                    self.present = Some(members.iter().copied().collect());
                    self.running = members.len() >= 2;
                    self.told_waiting.clear();
                    (
                        Some(format!(
                            "epoch {epoch}: {} of {size} members present ({})",
                            members.len(),
                            words::names(&g, members)
                        )),
                        json!({"event": "epoch", "epoch": epoch, "members": words::names_json(&g, members),
                               "present": members.len(), "roster": size}),
                    )
                }
                MemberEvent::Sent {
                    ticket,
                    round,
                    anonymity,
                } => {
                    self.pending.remove(ticket);
                    self.held.remove(ticket);
                    self.told_waiting.remove(ticket);
                    (
                        Some(format!(
                            "message #{ticket} went out completely in round {round}; anonymity set {anonymity} of {size} members (present for every piece of it)"
                        )),
                        json!({"event": "sent", "ticket": ticket, "round": round,
                               "anonymity": anonymity, "roster": size}),
                    )
                }
                MemberEvent::HeldBack {
                    ticket,
                    round,
                    reason,
                    anonymity,
                    floor,
                } => {
                    let now = (reason.clone(), *anonymity, *floor);
                    if self.held.get(ticket) == Some(&now) {
                        return;
                    }
                    self.held.insert(*ticket, now);
                    let then = if reason.starts_with(crate::protocol::member::PERMANENT) {
                        "it stays in the outbox (move the outbox file away to drop it)"
                    } else {
                        "it goes out when enough members are present"
                    };
                    (
                        Some(format!(
                            "holding back message #{ticket} (round {round}): {reason} (anonymity set {anonymity} of {size} members, floor {floor}); {then}"
                        )),
                        json!({"event": "held_back", "ticket": ticket, "round": round, "reason": reason,
                               "anonymity": anonymity, "floor": floor, "roster": size}),
                    )
                }
                MemberEvent::Verdict { verdict, case } => {
                    let who = verdict
                        .culprit
                        .as_ref()
                        .map_or(serde_json::Value::Null, |c| words::culprit_json(&g, c));
                    let member = match verdict.culprit {
                        Some(Culprit::Member(i)) => json!(i),
                        _ => serde_json::Value::Null,
                    };
                    let convicted = match &verdict.culprit {
                        Some(c) => format!("{} convicted", words::culprit(&g, c)),
                        None => "nobody convicted".to_string(),
                    };
                    let unresponsive = if verdict.unresponsive.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; excluded as unresponsive: {}",
                            words::names(&g, &verdict.unresponsive)
                        )
                    };
                    self.emit(
                        Some(format!(
                            "verdict in round {}: {convicted} (rule {}){unresponsive}",
                            verdict.round,
                            verdict.rule.name(),
                        )),
                        json!({"event": "verdict", "round": verdict.round, "culprit": who,
                               "culprit_member": member, "rule": verdict.rule.name(),
                               "unresponsive": words::names_json(&g, &verdict.unresponsive)}),
                    );
                    self.write_evidence(verdict, case);
                    return;
                }
                MemberEvent::Aborted { round, missing } => {
                    if let Some(p) = self.present.as_mut() {
                        for m in missing {
                            p.remove(m);
                        }
                        if p.len() < 2 {
                            self.running = false;
                        }
                    }
                    self.emit(
                        Some(format!(
                            "round {round} did not complete; missing: {}",
                            words::names(&g, missing)
                        )),
                        json!({"event": "aborted", "round": round,
                               "missing": words::names_json(&g, missing)}),
                    );
                    self.tell_waiting();
                    return;
                }
                MemberEvent::RoundCompleted { .. } => {
                    self.running = true;
                    return;
                }
                MemberEvent::Spliced { round, .. } => (
                    Some(format!(
                        "round {round}: a message's fragments do not match its digest (someone \
                         spliced in a fragment); it was not delivered"
                    )),
                    json!({"event": "spliced", "round": round}),
                ),
                MemberEvent::RelayFaulty { reason } => (
                    Some(format!("the relay broke the protocol: {reason}")),
                    json!({"event": "relay_faulty", "reason": reason}),
                ),
                MemberEvent::ContentKeyRefused { epoch, holder } => (
                    Some(format!(
                        "epoch {epoch}: the content key {} sealed for us does not open; this \
                         member can neither read nor send until the next epoch (at most \
                         epoch_rounds rounds; nothing to do)",
                        words::names(&g, &[*holder])
                    )),
                    json!({"event": "content_key_refused", "epoch": epoch,
                           "keyholder": words::names_json(&g, &[*holder])}),
                ),
                _ => return,
            },
        };
        self.emit(text, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adversary::MemberFault;
    use crate::sim::{LinkModel, Network, TestGroup};
    use std::collections::BTreeMap;

    fn printer(n: usize, evidence: Option<(PathBuf, PathBuf)>) -> NotePrinter {
        let tg = TestGroup::new(n, RoundParams::default(), 3).unwrap();
        NotePrinter::new(tg.group.clone(), false, evidence)
    }

    #[test]
    fn hold_back_is_told_once_per_message_and_again_on_change() {
        let mut p = printer(5, None);
        p.print(&MemberNote::Event(MemberEvent::EpochStarted {
            epoch: 1,
            members: vec![0, 1, 2],
        }));
        p.print(&MemberNote::Queued {
            ticket: 1,
            pending: 1,
        });
        let base = p.printed;
        let held = |round, anonymity| {
            MemberNote::Event(MemberEvent::HeldBack {
                ticket: 1,
                round,
                reason: "a reason".into(),
                anonymity,
                floor: 3,
            })
        };
        p.print(&held(5, 2));
        p.print(&held(6, 2));
        p.print(&held(7, 2));
        assert_eq!(p.printed, base + 1, "same reason and numbers: told once");
        p.print(&held(8, 1));
        assert_eq!(p.printed, base + 2, "numbers changed: told again");
    }

    #[test]
    fn a_message_queued_while_alone_is_told_it_waits() {
        let mut p = printer(3, None);
        p.print(&MemberNote::Connected);
        p.print(&MemberNote::Queued {
            ticket: 0,
            pending: 1,
        });
        assert_eq!(p.printed, 3, "connected, queued, and the hold-back notice");
        p.print(&MemberNote::Queued {
            ticket: 1,
            pending: 2,
        });
        assert_eq!(p.printed, 5, "each waiting message is told once");
        // Once rounds run, a queued message is not told it waits.
        p.print(&MemberNote::Event(MemberEvent::EpochStarted {
            epoch: 1,
            members: vec![0, 1],
        }));
        let before = p.printed;
        p.print(&MemberNote::Queued {
            ticket: 2,
            pending: 3,
        });
        assert_eq!(p.printed, before + 1);
        // Everyone else gone: the pending messages are told again, once.
        p.print(&MemberNote::Event(MemberEvent::Aborted {
            round: 4,
            missing: vec![1],
        }));
        assert_eq!(p.printed, before + 1 + 1 + 3);
    }

    #[test]
    fn evidence_dir_gets_one_verifiable_bundle_per_conviction() {
        let tg = TestGroup::new(5, RoundParams::default(), 7).unwrap();
        let faults: BTreeMap<u32, Vec<MemberFault>> =
            [(3u32, vec![MemberFault::JamSlots { rate: 1.0 }])].into();
        let mut net = Network::with_faults(&tg, 7, LinkModel::default(), vec![], &faults);
        for i in 0..3 {
            if let Some(m) = net.members[i].as_mut() {
                m.submit(b"hello").unwrap();
            }
        }
        net.start();
        let _ = net.run_rounds(30);
        let dir = std::env::temp_dir().join(format!("dcnet-member-ev-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = NotePrinter::new(
            tg.group.clone(),
            false,
            Some((dir.clone(), PathBuf::from("group.toml"))),
        );
        let verdicts: Vec<MemberEvent> = net.member_events[0]
            .iter()
            .filter(
                |e| matches!(e, MemberEvent::Verdict { verdict, .. } if verdict.culprit.is_some()),
            )
            .cloned()
            .collect();
        assert!(!verdicts.is_empty(), "the jammer is convicted");
        for e in &verdicts {
            p.print(&MemberNote::Event(e.clone()));
        }
        // The same conviction again (e.g. printed twice) gets a second file, never an overwrite.
        p.print(&MemberNote::Event(verdicts[0].clone()));
        assert_eq!(p.convictions, verdicts.len() + 1);
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), verdicts.len() + 1);
        for f in &files {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.contains("member3-m3"), "{name}");
            let case = crate::protocol::blame::decode_evidence(&std::fs::read(f).unwrap()).unwrap();
            let v = crate::protocol::blame::judge(&case).unwrap();
            assert_eq!(v.culprit, Some(Culprit::Member(3)));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
