//! `drydock demo`: the whole cycle on the embedded stack must verify.

mod common;

#[test]
fn demo_backs_up_wipes_restores_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("stack");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["demo", "--json", "--dir"])
        .arg(&stack)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert!(
        report["populate"]["database_bytes"].as_u64().unwrap() > 1 << 20,
        "the demo database must be over 1 MB"
    );
    let restored = report["restore"]["sources"].as_array().unwrap();
    assert_eq!(restored.len(), 2);
    assert!(restored.iter().all(|s| s["status"] == "verified"));
    assert!(report["rto_ms"].as_u64().is_some() && report["rpo_ms"].as_u64().is_some());
    // The excluded scratch file was not brought back; everything else was.
    assert!(!stack.join("app/uploads/exports/partial.tmp").exists());
    assert!(stack
        .join("app/uploads/exports/current.csv")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn demo_text_report_reads_well() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("s"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("demo: VERIFIED"), "{stdout}");
    assert!(stdout.contains("RTO") && stdout.contains("RPO"), "{stdout}");
    // Not a terminal: no progress bars, nothing on stderr.
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_refuses_a_folder_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drydock"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", common::text(&out));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing may be written"
    );
}
