//! `dcnet verify-evidence`: re-check an evidence bundle offline.
//!
//! A bundle carries its own roster and relay key (`GroupData`); whoever wrote it chose them, so
//! by default the bundle must be for the group in the `--group` file the user already trusts
//! (same `group_id`, which binds name, roster, relay key and parameters). Only
//! `--trust-bundle-roster` skips that check, with a warning.

use crate::config::GroupFile;
use crate::params::Group;
use crate::protocol::blame::{self, Culprit};
use clap::Args;
use std::path::PathBuf;

/// Options of `dcnet verify-evidence`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The evidence file (written by `dcnet demo --evidence-dir` or a member).
    pub file: PathBuf,
    /// The group file (TOML, as `dcnet member` uses) the evidence must be for: its group id
    /// (roster, relay key, parameters) must equal the bundle's.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "trust_bundle_roster",
        conflicts_with = "trust_bundle_roster"
    )]
    pub group: Option<PathBuf>,
    /// Check the bundle against the roster and relay key it carries itself, without a group
    /// file. Unsafe: whoever wrote the bundle chose that roster; compare the printed group id
    /// with your group's.
    #[arg(long)]
    pub trust_bundle_roster: bool,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Largest evidence file read (bytes).
const MAX_EVIDENCE: u64 = 64 << 20;

/// What was found before judging: the bundle and the group it is for.
struct Checked {
    case: blame::Case,
    group_id: String,
    relay_key: String,
}

/// Reads the bundle; `Err((message, group_id, relay_key))` once the bundle's group is known.
type Failure = (String, Option<String>, Option<String>);

fn load(a: &VerifyArgs) -> Result<Checked, Failure> {
    let bare = |e: String| (e, None, None);
    let meta = std::fs::metadata(&a.file)
        .map_err(|e| bare(format!("cannot read {}: {e}", a.file.display())))?;
    if meta.len() > MAX_EVIDENCE {
        return Err(bare(format!(
            "{} is larger than {MAX_EVIDENCE} bytes",
            a.file.display()
        )));
    }
    let bytes = std::fs::read(&a.file)
        .map_err(|e| bare(format!("cannot read {}: {e}", a.file.display())))?;
    let case = blame::decode_evidence(&bytes).map_err(|e| bare(e.to_string()))?;
    let relay_key = hex::encode(case.group.relay);
    let bundle_group = Group::from_data(&case.group).map_err(|e| {
        (
            format!("the bundle's group is invalid: {e}"),
            None,
            Some(relay_key.clone()),
        )
    })?;
    let group_id = hex::encode(bundle_group.id());
    let known = |e: String| (e, Some(group_id.clone()), Some(relay_key.clone()));
    if let Some(path) = &a.group {
        let gf = GroupFile::read(path).map_err(|e| known(format!("group file: {e}")))?;
        let expected = hex::encode(gf.group.id());
        if expected != group_id {
            return Err(known(format!(
                "evidence is for group {group_id}, not for {expected} from {}",
                path.display()
            )));
        }
    }
    Ok(Checked {
        case,
        group_id,
        relay_key,
    })
}

/// Verifies; exit code 0 only for valid evidence of a conviction in the expected group.
pub fn run(a: &VerifyArgs) -> i32 {
    if a.trust_bundle_roster {
        eprintln!(
            "warning: --trust-bundle-roster: checking the bundle against the roster and relay key \
             it carries itself, which its author chose; compare the group id below with your \
             group's (or pass --group FILE)"
        );
    }
    let (outcome, group_id, relay_key) = match load(a) {
        Ok(c) => (
            blame::judge(&c.case).map_err(|e| format!("invalid evidence: {e}")),
            Some(c.group_id),
            Some(c.relay_key),
        ),
        Err((e, g, r)) => (Err(e), g, r),
    };
    if let Some(g) = &group_id {
        println!("group id {g}");
    }
    if let Some(r) = &relay_key {
        println!("relay key {r}");
    }
    let (valid, culprit, rule, text) = match outcome {
        Ok(v) => match v.culprit {
            Some(c) => {
                let who = match c {
                    Culprit::Member(i) => format!("member {i}"),
                    Culprit::Relay => "the relay".to_string(),
                };
                let j = match c {
                    Culprit::Member(i) => serde_json::json!(i),
                    Culprit::Relay => serde_json::json!("relay"),
                };
                (
                    true,
                    j,
                    v.rule.name().to_string(),
                    format!(
                        "valid evidence: {who} is convicted in round {} (rule {})",
                        v.round,
                        v.rule.name()
                    ),
                )
            }
            None => (
                false,
                serde_json::Value::Null,
                v.rule.name().to_string(),
                format!("the bundle convicts nobody (outcome {})", v.rule.name()),
            ),
        },
        Err(e) => (
            false,
            serde_json::Value::Null,
            "invalid".to_string(),
            if e.starts_with("invalid evidence") {
                e
            } else {
                format!("invalid evidence: {e}")
            },
        ),
    };
    println!("{text}");
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "valid": valid,
                "culprit": culprit,
                "rule": rule,
                "group_id": group_id,
                "relay_key": relay_key,
                "roster_from_bundle": a.trust_bundle_roster,
            })
        );
    }
    if valid { 0 } else { 1 }
}
