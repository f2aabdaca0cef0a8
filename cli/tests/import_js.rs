//! `flume import --from flumelog-offset` reads logs written by the JavaScript flumelog-offset 3.x
//! (fixtures made by `fixtures/make-fixtures.js` with the real npm package).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{fails, ok};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// What flumelog-offset itself streamed back, as `flume export` prints it: key-value documents
/// gain their default `flags` and `expires`.
fn expected(bits: u32) -> Vec<Value> {
    std::fs::read_to_string(fixture(&format!("js{bits}.expected.ndjson")))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if v.get("$kv").is_some() {
                v["flags"] = json!(0);
                v["expires"] = json!(0);
            }
            v
        })
        .collect()
}

#[test]
fn every_record_of_32_and_48_bit_logs_matches() {
    for bits in [32, 48] {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("db");
        let log = fixture(&format!("js{bits}.log"));
        for arg in ["auto", &bits.to_string()] {
            let db = db.join(arg);
            let sum = &ok(
                &db,
                &[
                    "import",
                    "--from",
                    "flumelog-offset",
                    "--offset-bits",
                    arg,
                    log.to_str().unwrap(),
                ],
            )[0];
            let want = expected(bits);
            assert_eq!(sum["records"], json!(want.len()), "{sum}");
            assert_eq!(sum["skipped"], 1, "the deleted record");
            assert_eq!(sum["offset_bits"], bits);
            let exported = ok(&db, &["export"]);
            assert_eq!(exported, want, "{bits}-bit log, --offset-bits {arg}");
            // The `$kv` record reached the key-value view.
            assert_eq!(
                ok(&db, &["kv", "get", "users/amy"])[0]["value"],
                json!({"admin": true})
            );
        }
    }
}

#[test]
fn wrong_widths_damage_and_torn_tails() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let log32 = fixture("js32.log");
    let err = fails(
        &db,
        &[
            "import",
            "--from",
            "flumelog-offset",
            "--offset-bits",
            "48",
            log32.to_str().unwrap(),
        ],
        "",
        1,
    );
    assert!(err.contains("does not end with a 48-bit offset"), "{err}");

    // A record cut short at the end (a crash during an append) is ignored, as flumelog-offset does.
    let bytes = std::fs::read(&log32).unwrap();
    let torn = tmp.path().join("torn.log");
    std::fs::write(&torn, &bytes[..bytes.len() - 3]).unwrap();
    let sum = &ok(
        &db.join("torn"),
        &[
            "import",
            "--from",
            "flumelog-offset",
            torn.to_str().unwrap(),
        ],
    )[0];
    assert_eq!(sum["records"], json!(expected(32).len() - 1));

    // A damaged length in the middle is an error naming the record and its byte offset; the
    // batch holding it is not appended.
    let mut bad = bytes.clone();
    let first_len = u32::from_be_bytes(bad[0..4].try_into().unwrap()) as usize;
    let second = first_len + 12;
    bad[second + 3] ^= 0x01;
    let damaged = tmp.path().join("damaged.log");
    std::fs::write(&damaged, &bad).unwrap();
    let err = fails(
        &db.join("bad"),
        &[
            "import",
            "--from",
            "flumelog-offset",
            damaged.to_str().unwrap(),
        ],
        "",
        1,
    );
    assert!(
        err.contains(&format!("record 2 (byte offset {second})")),
        "{err}"
    );
    assert!(err.contains("nothing was appended"), "{err}");

    // ndjson import of a binary log says what to do.
    let err = fails(&db.join("nd"), &["import", log32.to_str().unwrap()], "", 1);
    assert!(err.contains("--from flumelog-offset"), "{err}");
    // The JavaScript format needs a file.
    let err = fails(
        &db.join("stdin"),
        &["import", "--from", "flumelog-offset"],
        "",
        1,
    );
    assert!(err.contains("give its path"), "{err}");
}
