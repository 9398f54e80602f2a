//! `dcnet verify-evidence`: re-check an evidence bundle offline.

use crate::protocol::blame::{self, Culprit};
use clap::Args;
use std::path::PathBuf;

/// Options of `dcnet verify-evidence`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The evidence file (written by `dcnet demo --evidence-dir` or a member).
    pub file: PathBuf,
    /// Print one JSON object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
}

/// Largest evidence file read (bytes).
const MAX_EVIDENCE: u64 = 64 << 20;

/// Verifies; exit code 0 only for valid evidence of a conviction.
pub fn run(a: &VerifyArgs) -> i32 {
    let outcome = std::fs::metadata(&a.file)
        .map_err(|e| format!("cannot read {}: {e}", a.file.display()))
        .and_then(|m| {
            if m.len() > MAX_EVIDENCE {
                Err(format!(
                    "{} is larger than {MAX_EVIDENCE} bytes",
                    a.file.display()
                ))
            } else {
                std::fs::read(&a.file).map_err(|e| format!("cannot read {}: {e}", a.file.display()))
            }
        })
        .and_then(|bytes| blame::decode_evidence(&bytes).map_err(|e| e.to_string()))
        .and_then(|case| blame::judge(&case).map_err(|e| e.to_string()));
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
            format!("invalid evidence: {e}"),
        ),
    };
    println!("{text}");
    if a.json {
        println!(
            "{}",
            serde_json::json!({"valid": valid, "culprit": culprit, "rule": rule})
        );
    }
    if valid { 0 } else { 1 }
}
