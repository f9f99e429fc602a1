//! The manifest decoder on arbitrary bytes: no panic, bounded memory, and whatever
//! decodes survives being written and read again unchanged.
#![no_main]

use drydock_domain::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        let again = Manifest::from_json(&m.to_json()).expect("a decoded manifest decodes again");
        assert_eq!(again, m);
    }
});
