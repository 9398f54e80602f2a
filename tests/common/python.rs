//! Runs one of the independent Python checkers of tests/vectors/ (written from
//! docs/PROTOCOL.md alone) and requires it to succeed. Skipped, with a note, only when python3
//! is not installed; any other failure to run it fails the test.

/// Runs `python3 tests/vectors/SCRIPT ARGS…` from the crate root.
pub fn check(script: &str, args: &[&str]) {
    let path = format!("tests/vectors/{script}");
    match std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("note: python3 is not installed; {path} did not run");
        }
        Err(e) => panic!("running python3 {path}: {e}"),
        Ok(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{path} failed:\n{text}");
            println!("{text}");
        }
    }
}
