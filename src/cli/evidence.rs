//! `dcnet verify-evidence`: re-check evidence bundles offline.
//!
//! A bundle carries its own roster and relay key (`GroupData`); whoever wrote it chose them, so
//! by default each bundle must be for the group in the `--group` file the user already trusts
//! (same `group_id`, which binds name, roster, relay key and parameters). Only
//! `--trust-bundle-roster` skips that check, with a warning.
//!
//! Results go to stdout (one line per file, or one JSON object per file with `--json`); why a
//! file is not valid evidence goes to stderr. Exit status: 0 when every file is valid evidence
//! of a conviction, 1 when some file is not, 2 for bad usage or a file that cannot be read.

use super::words;
use crate::config::GroupFile;
use crate::params::Group;
use crate::protocol::blame::{self, Culprit};
use clap::Args;
use std::path::{Path, PathBuf};

/// Options of `dcnet verify-evidence`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The evidence files (written by `dcnet demo --evidence-dir` or `dcnet member
    /// --evidence-dir`).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The group file (TOML, as `dcnet member` uses) the evidence must be for: its group id
    /// (roster, relay key, parameters) must equal each bundle's.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "trust_bundle_roster",
        conflicts_with = "trust_bundle_roster"
    )]
    pub group: Option<PathBuf>,
    /// Check each bundle against the roster and relay key it carries itself, without a group
    /// file. Unsafe: whoever wrote the bundle chose that roster; compare the printed group id
    /// with your group's.
    #[arg(long)]
    pub trust_bundle_roster: bool,
    /// One JSON object per file on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Largest evidence file read (bytes).
const MAX_EVIDENCE: u64 = 64 << 20;

/// Why a file is not valid evidence.
enum Failure {
    /// The file could not be read (exit 2).
    Io(String),
    /// The file was read but is not valid evidence of a conviction in the expected group
    /// (exit 1).
    Invalid(String),
}

/// One file's outcome.
struct Outcome {
    group_id: Option<String>,
    relay_key: Option<String>,
    result: Result<(blame::Verdict, Group), Failure>,
}

fn check(path: &Path, pinned: Option<&(PathBuf, GroupFile)>) -> Outcome {
    let mut o = Outcome {
        group_id: None,
        relay_key: None,
        result: Err(Failure::Invalid(String::new())),
    };
    let io = |e: std::io::Error| Failure::Io(format!("cannot read {}: {e}", path.display()));
    let bytes = match std::fs::metadata(path).map_err(io) {
        Ok(m) if m.len() > MAX_EVIDENCE => {
            o.result = Err(Failure::Invalid(format!(
                "larger than {MAX_EVIDENCE} bytes: not an evidence bundle"
            )));
            return o;
        }
        Ok(_) => std::fs::read(path).map_err(io),
        Err(e) => Err(e),
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            o.result = Err(e);
            return o;
        }
    };
    let case = match blame::decode_evidence(&bytes) {
        Ok(c) => c,
        Err(e) => {
            o.result = Err(Failure::Invalid(format!("not an evidence bundle: {e}")));
            return o;
        }
    };
    o.relay_key = Some(hex::encode(case.group.relay));
    let bundle_group = match Group::from_data(&case.group) {
        Ok(g) => g,
        Err(e) => {
            o.result = Err(Failure::Invalid(format!(
                "the bundle's group is invalid: {e}"
            )));
            return o;
        }
    };
    let group_id = hex::encode(bundle_group.id());
    o.group_id = Some(group_id.clone());
    if let Some((gpath, gf)) = pinned {
        let expected = hex::encode(gf.group.id());
        if expected != group_id {
            o.result = Err(Failure::Invalid(format!(
                "evidence is for group {group_id}, not for {expected} from {}",
                gpath.display()
            )));
            return o;
        }
    }
    o.result = match blame::judge(&case) {
        Ok(v) if v.culprit.is_some() => Ok((v, bundle_group)),
        Ok(v) => Err(Failure::Invalid(format!(
            "the bundle convicts nobody (outcome {})",
            v.rule.name()
        ))),
        Err(e) => Err(Failure::Invalid(format!("invalid evidence: {e}"))),
    };
    o
}

/// Verifies every file; see the module doc for the exit status.
pub fn run(a: &VerifyArgs) -> i32 {
    if a.trust_bundle_roster {
        eprintln!(
            "warning: --trust-bundle-roster: checking each bundle against the roster and relay \
             key it carries itself, which its author chose; compare the group id below with \
             your group's (or pass --group FILE)"
        );
    }
    let pinned = match &a.group {
        Some(p) => match GroupFile::read(p) {
            Ok(gf) => Some((p.clone(), gf)),
            Err(e) => {
                eprintln!("dcnet verify-evidence: group file: {e}");
                return 2;
            }
        },
        None => None,
    };
    let (mut valid, mut invalid, mut unreadable) = (0usize, 0usize, 0usize);
    for f in &a.files {
        let o = check(f, pinned.as_ref());
        let file = f.display().to_string();
        let mut j = serde_json::json!({
            "file": file,
            "valid": false,
            "culprit": null,
            "culprit_member": null,
            "round": null,
            "rule": "invalid",
            "group_id": o.group_id,
            "relay_key": o.relay_key,
            "roster_from_bundle": a.trust_bundle_roster,
            "error": null,
        });
        let text = match &o.result {
            Ok((v, g)) => {
                valid += 1;
                let c = v.culprit.unwrap_or(Culprit::Relay);
                j["valid"] = true.into();
                j["culprit"] = words::culprit_json(g, &c);
                if let Culprit::Member(i) = c {
                    j["culprit_member"] = i.into();
                }
                j["round"] = v.round.into();
                j["rule"] = v.rule.name().into();
                format!(
                    "{file}: valid evidence: {} is convicted in round {} (rule {})",
                    words::culprit(g, &c),
                    v.round,
                    v.rule.name()
                )
            }
            Err(Failure::Io(e)) => {
                unreadable += 1;
                eprintln!("dcnet verify-evidence: {e}");
                j["error"] = e.as_str().into();
                format!("{file}: not checked (cannot be read)")
            }
            Err(Failure::Invalid(e)) => {
                invalid += 1;
                eprintln!("dcnet verify-evidence: {file}: {e}");
                j["error"] = e.as_str().into();
                format!("{file}: NOT valid evidence")
            }
        };
        if a.json {
            println!("{j}");
        } else {
            println!("{text}");
            if let Some(g) = &o.group_id {
                println!("  group id {g}");
            }
            if let Some(r) = &o.relay_key {
                println!("  relay key {r}");
            }
        }
    }
    if a.files.len() > 1 {
        let line = format!(
            "{} files: {valid} valid, {invalid} not valid, {unreadable} unreadable",
            a.files.len()
        );
        if a.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    if unreadable > 0 {
        2
    } else if invalid > 0 {
        1
    } else {
        0
    }
}
