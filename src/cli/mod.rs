//! Command-line interface (clap). Each command is a thin layer over the library.

pub mod bench;
mod bench_proc;
pub mod chat;
pub mod demo;
pub mod evidence;
pub mod net;
pub mod sim;

use clap::{Parser, Subcommand};

/// dcnet: an anonymous broadcast group (DC-net) — demo, simulation and tools.
#[derive(Parser, Debug)]
#[command(name = "dcnet", version, about, long_about = None)]
pub struct Cli {
    /// More log output on stderr: -v for info, -vv for debug, -vvv for trace (RUST_LOG, when
    /// set, wins).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output on stderr: errors only (RUST_LOG, when set, wins).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a whole group (relay and members) in one process and show what happens, round by
    /// round. Nothing printed ever names a sender.
    Demo(demo::DemoArgs),
    /// Run a scenario sweep on the deterministic simulator (results.csv, SVG and PNG plots,
    /// summary.md).
    Sim(sim::SimArgs),
    /// Measure rounds per second and message latency over real QUIC on 127.0.0.1.
    Bench(bench::BenchArgs),
    /// Generate an identity key; prints the public key alone on one line.
    Keygen(net::KeygenArgs),
    /// Key files.
    #[command(subcommand)]
    Key(net::KeyCmd),
    /// Group files.
    #[command(subcommand)]
    Group(net::GroupCmd),
    /// Run the relay of a group over QUIC.
    Relay(net::RelayArgs),
    /// Run a member over QUIC: each stdin line is sent anonymously; deliveries are printed.
    Member(net::MemberArgs),
    /// Re-check an evidence bundle offline against a group file and print who is convicted and
    /// the rule broken. Exits 0 only for valid evidence of a conviction in that group.
    VerifyEvidence(evidence::VerifyArgs),
}

impl Cli {
    /// The log filter -v/-q ask for (used when RUST_LOG is not set).
    pub fn log_level(&self) -> String {
        // (The member driver logs what it also reports to the user at info level only, so
        // the default level never repeats a stdout line.)
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            _ => "trace",
        };
        level.to_string()
    }
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Demo(a) => demo::run(&a),
        Command::VerifyEvidence(a) => evidence::run(&a),
        Command::Keygen(a) => net::keygen(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Sim(a) => sim::run(&a),
        Command::Key(net::KeyCmd::Show(a)) => net::key_show(&a),
        Command::Group(net::GroupCmd::New(a)) => net::group_new(&a),
        Command::Group(net::GroupCmd::Show(a)) => net::group_show(&a),
        Command::Relay(a) => net::relay(&a),
        Command::Member(a) => net::member(&a),
    }
}

/// Words for people: roster names instead of member indices.
pub mod words {
    use crate::params::Group;
    use crate::protocol::blame::Culprit;

    /// The roster name of member `i` (`member #i` if the roster has no such index, which only a
    /// faulty relay could make happen).
    pub fn name(group: &Group, i: u32) -> String {
        group
            .members()
            .get(i as usize)
            .map_or_else(|| format!("member #{i}"), |m| m.name.clone())
    }

    /// Roster names joined for a sentence: "alice", "alice and bob", "alice, bob and carol";
    /// "nobody" for an empty list.
    pub fn names(group: &Group, members: &[u32]) -> String {
        let v: Vec<String> = members.iter().map(|&i| name(group, i)).collect();
        match v.as_slice() {
            [] => "nobody".to_string(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        }
    }

    /// Who a verdict convicts: a roster name or "the relay".
    pub fn culprit(group: &Group, c: &Culprit) -> String {
        match c {
            Culprit::Member(i) => name(group, *i),
            Culprit::Relay => "the relay".to_string(),
        }
    }

    /// A culprit for JSON: the roster name, or "relay".
    pub fn culprit_json(group: &Group, c: &Culprit) -> serde_json::Value {
        match c {
            Culprit::Member(i) => serde_json::json!(name(group, *i)),
            Culprit::Relay => serde_json::json!("relay"),
        }
    }

    /// Names for JSON: a list of roster names.
    pub fn names_json(group: &Group, members: &[u32]) -> serde_json::Value {
        serde_json::json!(members.iter().map(|&i| name(group, i)).collect::<Vec<_>>())
    }

    /// "1 member" / "3 members".
    pub fn members(n: usize) -> String {
        if n == 1 {
            "1 member".into()
        } else {
            format!("{n} members")
        }
    }
}
