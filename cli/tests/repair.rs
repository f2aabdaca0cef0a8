//! `verify` and `repair` on a log with a flipped byte, through the built binary.

#![allow(clippy::unwrap_used)]

mod common;

use common::{database, fails, flip, flume, ok, segments, values};
use serde_json::json;

#[test]
fn verify_finds_a_flipped_byte_and_repair_cuts_there() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let seqs = database(&db);
    let clean = &ok(&db, &["verify"])[0];
    assert_eq!(clean["ok"], true);
    assert_eq!(clean["log"]["records"], 300);
    assert_eq!(clean["log"]["last"], json!(seqs[299]));
    assert_eq!(clean["log"]["retired_meanwhile"], json!([]));

    // Damage record 125 (in batch 12, records 120-129), which lies in a sealed segment.
    let segs = segments(&db);
    assert!(segs.len() > 4);
    let victim = seqs[125];
    let (base, file) = segs
        .iter()
        .rev()
        .find(|(b, _)| *b <= victim)
        .unwrap()
        .clone();
    assert_ne!(file, segs.last().unwrap().1);
    let offset = victim - base + 32;
    flip(&file, offset + 40);

    let out = flume(&db)
        .arg("verify")
        .assert()
        .code(1)
        .get_output()
        .clone();
    let report = &common::lines(&out.stdout)[0];
    assert_eq!(report["ok"], false);
    let bad = &report["log"]["corruption"];
    assert_eq!(
        (
            bad["file"].as_str().unwrap(),
            bad["offset"].as_u64().unwrap()
        ),
        (file.to_str().unwrap(), offset)
    );
    assert_eq!(bad["seq"], json!(victim));
    assert!(bad["reason"].as_str().unwrap().contains("checksum"));
    assert_eq!(
        report["log"]["records"], 120,
        "the whole batches before the damage"
    );
    // The views include records after the damage: they are ahead of the readable log.
    assert!(
        report["views"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["ok"] == false)
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("flume repair")
    );
    let table = flume(&db)
        .args(["verify", "--format", "table"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("CORRUPT") && table.contains(&format!("offset {offset}")),
        "{table}"
    );

    // Reads print what precedes the damage and fail.
    let out = flume(&db)
        .arg("export")
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 120);
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("flume repair")
    );

    // Without a terminal and without --yes, repair shows the loss and refuses.
    let err = fails(&db, &["repair"], "y\n", 1);
    assert!(
        err.contains(&format!("corrupt in {} at offset {offset}", file.display())),
        "{err}"
    );
    assert!(
        err.contains(&format!("cuts the log at seq {}", seqs[120])),
        "{err}"
    );
    assert!(err.contains("--yes"), "{err}");
    assert_eq!(segments(&db).len(), segs.len(), "nothing changed");

    let done = &ok(&db, &["repair", "--yes"])[0];
    assert_eq!(done["repaired"], true);
    assert_eq!(done["corrupt"], true);
    assert_eq!(done["cut_seq"], json!(seqs[120]));
    assert_eq!(done["first_lost"], json!(seqs[120]));
    let lost = done["lost_records"].as_u64().unwrap();
    assert!((5..180).contains(&lost), "{lost}");
    assert_eq!(
        done["views_rebuilt"].as_array().unwrap().len(),
        3,
        "kv, count, query"
    );

    let after = &ok(&db, &["verify"])[0];
    assert_eq!(after["ok"], true);
    assert_eq!(after["log"]["records"], 120);
    let kept: Vec<u64> = values(&db)
        .iter()
        .map(|v| v["i"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, (0..120).collect::<Vec<_>>());
    let views = ok(&db, &["views", "--values"]);
    assert_eq!(views[1]["value"], 120);
    // The log goes on from the cut.
    assert_eq!(ok(&db, &["append", "{}"])[0], json!(seqs[120]));
    assert_eq!(ok(&db, &["repair"])[0]["repaired"], false);
}

#[test]
fn a_torn_tail_is_not_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    database(&db);
    let (_, last) = segments(&db).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&last)
            .unwrap()
            .write_all(&[9; 33])
            .unwrap();
    }
    let report = &ok(&db, &["verify"])[0];
    assert_eq!(report["ok"], true);
    assert_eq!(report["log"]["torn_tail"]["offset"], json!(len));
    assert_eq!(report["log"]["torn_tail"]["bytes"], 33);
    let done = &ok(&db, &["repair", "--yes"])[0];
    assert_eq!(
        (done["corrupt"].clone(), done["lost_records"].clone()),
        (json!(false), json!(0))
    );
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len);
}

#[test]
fn repair_refuses_a_database_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    database(&db);
    // A live stream holds no lock; an importer reading a slow stdin holds the writer lock.
    let mut writer = std::process::Command::new(common::exe())
        .args(["--db", db.to_str().unwrap(), "import"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it holds the writer lock (the lock file then names its pid). Probing with
    // another writer instead could take the lock first and make the importer fail.
    let lock = db.join("log").join("LOCK");
    let pid = writer.id().to_string();
    for _ in 0..6000 {
        if std::fs::read_to_string(&lock).is_ok_and(|s| s.trim() == pid) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let err = fails(&db, &["repair", "--yes"], "", 1);
    assert!(
        err.contains("in use by") && err.contains("run repair again"),
        "{err}"
    );
    let err = fails(&db, &["kv", "put", "a/b", "1"], "", 1);
    assert!(
        err.contains("in use by") && err.contains("`stream`"),
        "{err}"
    );
    // Reads work meanwhile.
    assert_eq!(values(&db).len(), 300);
    assert_eq!(ok(&db, &["verify"])[0]["ok"], true);
    drop(writer.stdin.take());
    assert!(writer.wait().unwrap().success());
}
