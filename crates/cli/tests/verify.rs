//! `drydock verify`, `drydock backups` and source selection through the real binary.

mod common;

use common::Stack;

fn files_stack() -> (Stack, std::path::PathBuf) {
    let stack = Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"docs\", priority = \"critical\", path = \"docs\" },\n  { kind = \"files\", name = \"media\", priority = \"low\", path = \"media\" },\n  { kind = \"files\", name = \"cache\", priority = \"none\", path = \"cache\" },\n]\n",
    );
    let docs = stack.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    for i in 0..20 {
        std::fs::write(
            docs.join(format!("doc{i}.txt")),
            format!("document {i} ").repeat(2000),
        )
        .unwrap();
    }
    std::fs::create_dir(stack.path().join("media")).unwrap();
    std::fs::write(stack.path().join("media/a.bin"), vec![7u8; 10_000]).unwrap();
    (stack, docs)
}

#[test]
fn default_backup_takes_critical_and_high_and_priority_selects() {
    let (stack, _) = files_stack();
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 0, "{report:#}");
    let names: Vec<&str> = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs"]);
    let (code, report) = stack.json(&["backup", "--priority", "low"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["sources"][0]["source"], "media");
    // `none` is never backed up, not even with --all.
    let (_, report) = stack.json(&["backup", "--all"]);
    let names: Vec<&str> = report["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs", "media"], "critical first");
    let (code, v) = stack.json(&["backup", "--service", "nope"]);
    assert_eq!(code, 2);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("no service named `nope`"),
        "{v}"
    );
}

#[test]
fn a_missing_non_critical_source_is_a_warning_and_a_missing_critical_one_fails() {
    let (stack, docs) = files_stack();
    std::fs::remove_dir_all(stack.path().join("media")).unwrap();
    let (code, report) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["status"], "partial");
    assert_eq!(report["sources"][1]["status"], "skipped");
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("app/media skipped"),
        "{report:#}"
    );
    std::fs::remove_dir_all(&docs).unwrap();
    let (code, report) = stack.json(&["backup"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["status"], "failed");
    assert!(
        report["sources"][0]["error"]
            .as_str()
            .unwrap()
            .contains("docs"),
        "{report:#}"
    );
}

#[test]
fn verify_finds_a_corrupted_pack_and_restores_by_id() {
    let (stack, docs) = files_stack();
    let (_, first) = stack.json(&["backup"]);
    std::fs::write(docs.join("doc0.txt"), "rewritten").unwrap();
    let (_, second) = stack.json(&["backup"]);
    let (code, report) = stack.json(&["verify", "--read-data"]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["copies"][0]["name"], "local");
    assert_eq!(report["copies"][0]["backups"].as_array().unwrap().len(), 2);

    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0);
    assert_eq!(list["backups"][0]["id"], second["id"], "newest first");
    let text = String::from_utf8(stack.run(&["backups"]).stdout).unwrap();
    assert!(
        text.contains(first["id"].as_str().unwrap()) && text.contains("local:verified@"),
        "{text}"
    );

    // An older backup by id, over existing data, with --force.
    let (code, restored) =
        stack.json(&["restore", first["id"].as_str().unwrap(), "--all", "--force"]);
    common::assert_verified(code, &restored);
    assert_eq!(
        std::fs::read_to_string(docs.join("doc0.txt")).unwrap(),
        "document 0 ".repeat(2000)
    );

    // Live data vs latest backup: equal to the first backup now, so the latest differs.
    let out = stack.run(&["verify", "--live"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("doc0.txt"),
        "names the file: {}",
        common::text(&out)
    );

    // Flip a byte in the largest pack (the documents' contents): a full read must
    // notice, name the pack and the backups needing it, and exit 2.
    let largest = walkdir::WalkDir::new(stack.repo().join("data"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest.path()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(largest.path(), bytes).unwrap();
    let pack_name = largest.file_name().to_string_lossy().into_owned();
    let (code, report) = stack.json(&["verify", "--read-data"]);
    assert_eq!(code, 2, "{report:#}");
    assert_eq!(report["ok"], false);
    let local = &report["copies"][0];
    assert!(
        !local["repository_errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    // Each damaged pack is named with the backups and sources that need it.
    let damaged = local["damaged"].as_array().unwrap();
    assert!(!damaged.is_empty(), "{report:#}");
    assert_eq!(damaged.len(), 1, "{report:#}");
    assert_eq!(
        damaged[0]["object"],
        format!("pack {pack_name}"),
        "{report:#}"
    );
    let needed: Vec<&str> = damaged
        .iter()
        .flat_map(|d| d["needed_by"].as_array().unwrap())
        .map(|n| n["backup_id"].as_str().unwrap())
        .collect();
    assert!(
        needed.contains(&first["id"].as_str().unwrap()),
        "{report:#}"
    );
    assert!(
        needed.contains(&second["id"].as_str().unwrap()),
        "{report:#}"
    );
    let (_, list) = stack.json(&["backups"]);
    assert_eq!(
        list["backups"][0]["copies"][0]["status"], "corrupt",
        "{list:#}"
    );
}

#[test]
fn commands_on_a_missing_repository_say_what_to_do() {
    let (stack, _) = files_stack();
    for args in [
        &["backups"][..],
        &["restore", "latest", "--all"],
        &["verify"],
    ] {
        let out = stack.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            common::text(&out)
        );
        assert!(
            common::text(&out).contains("run `drydock backup` first"),
            "{args:?}: {}",
            common::text(&out)
        );
        assert!(
            !stack.repo().exists(),
            "reading commands never create a repository"
        );
    }
}
