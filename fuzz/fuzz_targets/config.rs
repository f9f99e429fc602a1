//! The config loader on arbitrary text: no panic, no unbounded memory (libFuzzer's
//! `-rss_limit_mb` and `-malloc_limit_mb` catch that), every error naming the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/fuzz/drydock.toml");
    if let Err(errors) = drydock_domain::Config::from_text(file, text) {
        assert!(!errors.0.is_empty(), "a rejected config names at least one error");
        for e in &errors.0 {
            assert_eq!(e.file, file);
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= text.lines().count() + 1, "{e}");
            }
        }
    }
});
