//! `dcnet keygen`, `dcnet group new`, `dcnet relay`, `dcnet member`: what a real group runs.

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
    New(GroupNewArgs),
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
    /// Reservation cells, at least 1 [default: twice the members].
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
    /// Append every delivered message to this file, one JSON object per line (round, slot,
    /// text; never a sender).
    #[arg(long)]
    pub history: Option<PathBuf>,
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
        cells: a.cells.unwrap_or(0),
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
                "{} (a message goes out only while at least {floor} of the {n} members are present)",
                p.tolerance
            ),
        ),
        (
            "max_fragments",
            format!("{} slots per message at most", p.max_fragments),
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
        let rt = runtime()?;
        rt.block_on(async move {
            let group = Arc::new(gf.group.clone());
            let mut h = crate::net::relay::spawn(group, key, listen, vec![]).await?;
            println!(
                "relay listening on {} for group {}",
                h.local_addr,
                gf.group.name()
            );
            loop {
                tokio::select! {
                    e = h.events.recv() => match e {
                        Some(e) => print_relay_event(&e),
                        None => break,
                    },
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
            println!("relay shutting down");
            h.shutdown().await;
            Ok::<(), String>(())
        })
    })();
    match res {
        Ok(()) => 0,
        Err(e) => fail("relay", e),
    }
}

fn print_relay_event(e: &crate::protocol::RelayEvent) {
    use crate::protocol::RelayEvent as E;
    match e {
        E::EpochStarted { epoch, members } => println!("epoch {epoch}: members {members:?}"),
        E::Excluded {
            member,
            reason,
            round,
        } => {
            println!("member {member} excluded ({reason:?}) at round {round}")
        }
        E::Verdict { verdict, .. } => println!(
            "verdict in round {}: {:?} ({})",
            verdict.round,
            verdict.culprit,
            verdict.rule.name()
        ),
        E::Stalled { available } => println!("waiting: {available} member(s) available"),
        _ => {}
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
        let relay_addr = gf.relay_socket()?;
        let json = a.json;
        let stay = a.stay;
        let rt = runtime()?;
        let res = rt.block_on(async move {
            let group = Arc::new(gf.group.clone());
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
                },
            )
            .await?;
            let submit = h.submit.clone();
            let (eof_tx, mut eof_rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.is_empty() {
                        continue;
                    }
                    if submit.send(line.into_bytes()).await.is_err() {
                        break;
                    }
                }
                let _ = eof_tx.send(());
            });
            if !json {
                println!(
                    "member {me} of {}; type a line to send it anonymously",
                    gf.group.name()
                );
            }
            let mut term = terminate_signal()?;
            let mut fatal = None;
            let mut input_done = false;
            loop {
                tokio::select! {
                    n = h.notes.recv() => match n {
                        Some(n) => {
                            print_note(&n, json);
                            if let (Some(f), MemberNote::Event(MemberEvent::Delivered { round, slot, message })) = (history.as_mut(), &n) {
                                use std::io::Write;
                                let line = serde_json::json!({"round": round, "slot": slot,
                                    "text": String::from_utf8_lossy(message)});
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
                    r = &mut eof_rx, if !input_done => {
                        input_done = true;
                        if r.is_ok() && !stay {
                            h.drain();
                        }
                    }
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

fn print_note(n: &MemberNote, json: bool) {
    use serde_json::json;
    let (text, j) = match n {
        MemberNote::Connected => (
            "connected to the relay".to_string(),
            json!({"event": "connected"}),
        ),
        MemberNote::Disconnected(r) => (
            format!("relay unreachable ({r}); retrying"),
            json!({"event": "disconnected", "reason": r}),
        ),
        MemberNote::Queued { ticket, pending } => (
            format!("queued message #{ticket} ({pending} waiting or in flight)"),
            json!({"event": "queued", "ticket": ticket, "pending": pending}),
        ),
        MemberNote::Fatal(r) => (
            format!("stopped: {r}"),
            json!({"event": "fatal", "reason": r}),
        ),
        MemberNote::Refused(r) => (
            format!("not sent: {r}"),
            json!({"event": "refused", "reason": r}),
        ),
        MemberNote::Restored { tickets } => (
            format!(
                "{} message(s) from before the last stop are queued again and go out first",
                tickets.len()
            ),
            json!({"event": "restored", "tickets": tickets}),
        ),
        MemberNote::Draining { pending } => (
            format!(
                "input ended: leaving once the {pending} queued message(s) are out (Ctrl-C leaves now; they stay in the outbox)"
            ),
            json!({"event": "draining", "pending": pending}),
        ),
        MemberNote::Drained => (
            "every queued message is out; leaving".to_string(),
            json!({"event": "drained"}),
        ),
        MemberNote::Event(e) => match e {
            MemberEvent::Delivered {
                round,
                slot,
                message,
            } => {
                let t = String::from_utf8_lossy(message).into_owned();
                (
                    format!("[round {round}, slot {slot}] {t}"),
                    json!({"event": "delivered", "round": round, "slot": slot, "text": t}),
                )
            }
            MemberEvent::EpochStarted { epoch, members } => (
                format!("epoch {epoch}: {} members present", members.len()),
                json!({"event": "epoch", "epoch": epoch, "members": members}),
            ),
            MemberEvent::Sent {
                ticket,
                round,
                anonymity,
            } => (
                format!(
                    "message #{ticket} went out completely (round {round}); |A| = {anonymity} members were present for all of it"
                ),
                json!({"event": "sent", "ticket": ticket, "round": round, "anonymity": anonymity}),
            ),
            MemberEvent::HeldBack {
                ticket,
                round,
                reason,
                anonymity,
                floor,
            } => (
                format!(
                    "holding back message #{ticket} in round {round}: {reason} (|A| = {anonymity}, floor {floor}); it goes out when enough members are back"
                ),
                json!({"event": "held_back", "ticket": ticket, "round": round, "reason": reason,
                       "anonymity": anonymity, "floor": floor}),
            ),
            MemberEvent::Verdict { verdict, .. } => {
                let who = match verdict.culprit {
                    Some(Culprit::Member(i)) => json!(i),
                    Some(Culprit::Relay) => json!("relay"),
                    None => serde_json::Value::Null,
                };
                (
                    format!(
                        "verdict in round {}: {} ({}); unresponsive {:?}",
                        verdict.round,
                        who,
                        verdict.rule.name(),
                        verdict.unresponsive
                    ),
                    json!({"event": "verdict", "round": verdict.round, "culprit": who,
                           "rule": verdict.rule.name(), "unresponsive": verdict.unresponsive}),
                )
            }
            MemberEvent::Aborted { round, missing } => (
                format!("round {round} aborted; missing {missing:?}"),
                json!({"event": "aborted", "round": round, "missing": missing}),
            ),
            MemberEvent::Spliced { round, .. } => (
                format!(
                    "round {round}: a message's fragments do not match its digest (someone \
                     spliced in a fragment); it was not delivered"
                ),
                json!({"event": "spliced", "round": round}),
            ),
            MemberEvent::RelayFaulty { reason } => (
                format!("the relay broke the protocol: {reason}"),
                json!({"event": "relay_faulty", "reason": reason}),
            ),
            _ => return,
        },
    };
    if json {
        println!("{j}");
    } else {
        println!("{text}");
    }
}
