//! Every config under examples/ must load: they are documentation that must not rot.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use drydock_domain::Config;

#[test]
fn every_example_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("shop-repo.password");
    std::fs::write(&secret_file, "example\n").unwrap();
    // Secret files open to group or others are refused; a real one is 0600.
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // SAFETY: this test binary has one test; nothing else reads the environment concurrently.
    unsafe {
        for var in [
            "DRYDOCK_REPO_PASSWORD",
            "PGPASSWORD",
            "SHOP_DB_PASSWORD",
            "SHOP_REDIS_PASSWORD",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
        ] {
            std::env::set_var(var, "example");
        }
    }
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            // The shop example reads its password from /etc; point it at the temp file.
            let text = std::fs::read_to_string(&path).unwrap().replace(
                "/etc/drydock/shop-repo.password",
                secret_file.to_str().unwrap(),
            );
            let config = Config::from_text(&path, &text)
                .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
            assert!(
                config.sources().count() > 0,
                "{} declares no data",
                path.display()
            );
            loaded += 1;
        }
    }
    assert!(
        loaded >= 2,
        "expected the example configs in {}",
        examples.display()
    );
}
