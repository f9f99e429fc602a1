//! No false "verified" (issue 12, item 5), through the real binary: a backup that lost
//! sources to retention is listed partial with what it still holds, and restoring all
//! of it fails naming what retention removed; a wrong repository password is an
//! unusable repository (exit 2) for `restore` as for `backups`.

mod common;

use common::Stack;

/// Two services with one directory each; retention keeps one backup a day.
fn two_services() -> Stack {
    let stack = Stack::new(
        "[services.a]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"da\", priority = \"high\", path = \"da\" }]\n\n[services.b]\nruntime = { kind = \"none\" }\ndata = [{ kind = \"files\", name = \"db\", priority = \"high\", path = \"db\" }]\n\n[retention]\ndaily = 1\nweekly = 0\nmonthly = 0\n",
    );
    for (dir, text) in [("da", "first a"), ("db", "first b")] {
        std::fs::create_dir(stack.path().join(dir)).unwrap();
        std::fs::write(stack.path().join(dir).join("f.txt"), text).unwrap();
    }
    stack
}

#[test]
fn a_backup_retention_partly_pruned_is_listed_partial_and_its_full_restore_fails_naming_why() {
    let stack = two_services();
    let (code, first) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{first:#}");
    let first_id = first["id"].as_str().unwrap().to_string();
    std::fs::write(stack.path().join("da/f.txt"), "second a").unwrap();
    let (code, second) = stack.json(&["backup", "--service", "a"]);
    assert_eq!(code, 0, "{second:#}");
    let (code, verify) = stack.json(&["verify"]);
    assert_eq!(code, 0, "{verify:#}");
    // One a day: a's older backup goes, b's only one stays.
    let (code, pruned) = stack.json(&["prune"]);
    assert_eq!(code, 0, "{pruned:#}");

    let (code, list) = stack.json(&["backups"]);
    assert_eq!(code, 0, "{list:#}");
    let listed = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == first_id.as_str())
        .unwrap_or_else(|| panic!("the first backup is gone: {list:#}"))
        .clone();
    assert_eq!(listed["status"], "partial", "{listed:#}");
    let source = |name: &str| {
        listed["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == name)
            .unwrap()
            .clone()
    };
    assert!(source("da")["pruned_at"].is_string(), "{listed:#}");
    assert!(source("db").get("pruned_at").is_none(), "{listed:#}");
    let text = common::text(&stack.run(&["backups"]));
    assert!(
        text.contains(&format!(
            "{first_id}: partial: retention pruned a/da; still holds b/db"
        )),
        "{text}"
    );

    // Restoring all of it restores b, and fails naming a as pruned (not damaged).
    std::fs::write(stack.path().join("db/f.txt"), "changed b").unwrap();
    let (code, restored) = stack.json(&["restore", &first_id, "--all", "--force"]);
    assert_ne!(code, 0, "{restored:#}");
    assert_eq!(restored["verified"], false, "{restored:#}");
    let said = restored.to_string();
    assert!(said.contains("a/da"), "{said}");
    assert!(said.contains("pruned"), "{said}");
    assert!(said.contains("not damaged"), "{said}");
    assert_eq!(
        std::fs::read_to_string(stack.path().join("db/f.txt")).unwrap(),
        "first b"
    );
    // a's live data was left alone.
    assert_eq!(
        std::fs::read_to_string(stack.path().join("da/f.txt")).unwrap(),
        "second a"
    );
}

#[test]
fn restore_with_a_wrong_repository_password_is_an_unusable_repository() {
    let stack = two_services();
    let (code, first) = stack.json(&["backup", "--all"]);
    assert_eq!(code, 0, "{first:#}");
    let stack = stack.env("TEST_REPO_PASSWORD", "not-the-password");
    let (code, listed) = stack.json(&["backups"]);
    assert_eq!(code, 2, "{listed:#}");
    for which in ["latest", first["id"].as_str().unwrap()] {
        let (code, restored) = stack.json(&["restore", which, "--all", "--force"]);
        assert_eq!(code, 2, "{restored:#}");
        assert!(
            restored.to_string().contains("wrong password"),
            "{restored:#}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(stack.path().join("da/f.txt")).unwrap(),
        "first a"
    );
}
