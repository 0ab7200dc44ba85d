//! Fuzz target: arbitrary bytes as a JSON document, read by both of core's JSON readers.
//!
//! The request path reads headers and claims with the single-pass scanner
//! (`internal::members::scan_members`); diagnostics build the full map with `serde_json`
//! (`internal::json::parse_object`). Two parsers of one token must never disagree (RFC 8725
//! §3.5): this target asserts they give the same verdict on every input, and that every member
//! the scanner keeps reads back as the value the full parse holds. On an accepted document,
//! `find_member` (which skips values by their ends, trusting the scan) finds every top-level
//! member as the full parse holds it. The claims capture's plain one-pass scan
//! (`claims::plain_scan_agrees`), when it reads a document at all, keeps exactly what the full
//! scan keeps, and the scope readings of the captured claims (`claims::scope_readings_agree`)
//! are what their definition over the full map says. Nothing may panic.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run json_members fuzz/seeds/json_members -- -max_total_time=60`
//! from the repository root (see `fuzz/README.md`).

#![no_main]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jwtgate_core::internal::json::parse_object;
use jwtgate_core::claims::{plain_scan_agrees, scope_readings_agree};
use jwtgate_core::internal::members::{find_member, scan_members};
use libfuzzer_sys::fuzz_target;

/// The member names kept (the scanner hands these over; the rest it only validates).
const KEPT: [&str; 4] = ["iss", "aud", "exp", "cnf"];

fuzz_target!(|data: &[u8]| {
    let mut kept = Vec::new();
    let scanned = scan_members(
        data,
        &|name| KEPT.iter().position(|kept| *kept == name),
        &mut |slot, raw| {
            let items: Vec<_> = raw.items().map(|item| item.to_value()).collect();
            kept.push((slot, raw.to_value(), raw.string(), items));
        },
    );
    // The claims capture's plain one-pass scan keeps exactly what the full scan keeps whenever
    // it reads a document (the full scan decides everything else).
    assert!(
        plain_scan_agrees(data).is_some(),
        "the plain claims scan disagrees with the full scan"
    );
    assert!(
        scope_readings_agree(data).is_some(),
        "the scope readings of the captured claims disagree with their definition"
    );
    let parsed = parse_object(data);
    match (&scanned, &parsed) {
        (Ok(_), Ok(map)) => {
            for (slot, value, string, items) in &kept {
                let expected = &map[KEPT[*slot]];
                assert_eq!(value, expected);
                assert_eq!(string.as_deref(), expected.as_str());
                match expected.as_array() {
                    Some(array) => assert_eq!(&items[..], &array[..]),
                    None => assert!(items.is_empty()),
                }
            }
            let present = KEPT.iter().filter(|name| map.contains_key(**name)).count();
            assert_eq!(kept.len(), present);
            for (name, value) in map {
                let found = find_member(data, name).map(|raw| raw.to_value());
                assert_eq!(found.as_ref(), Some(value), "{name:?}");
            }
            if !map.contains_key("\u{1}absent") {
                assert!(find_member(data, "\u{1}absent").is_none());
            }
        }
        (Err(_), Err(_)) => {
            let _ = find_member(data, KEPT[0]);
        }
        _ => panic!(
            "the readers disagree: scan {:?}, parse {:?}",
            scanned.map(|_| ()),
            parsed.map(|_| ())
        ),
    }
});
