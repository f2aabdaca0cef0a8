//! `flume --help` and every subcommand's help, compared with the snapshots in `tests/snapshots/`.
//! After changing the help on purpose, refresh them with `UPDATE_SNAPSHOTS=1 cargo test -p flume-cli --test help`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

const COMMANDS: &[&str] = &[
    "",
    "init",
    "append",
    "get",
    "stream",
    "query",
    "serve",
    "kv",
    "kv get",
    "kv put",
    "kv delete",
    "kv list",
    "views",
    "rebuild",
    "verify",
    "repair",
    "retire",
    "import",
    "export",
    "stats",
    "bench",
];

#[test]
fn help_matches_the_snapshots() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut stale = Vec::new();
    for command in COMMANDS {
        // `flume bench --help` is flume-bench's own help; `flume help bench` is ours.
        let mut args: Vec<&str> = vec!["help"];
        args.extend(command.split_whitespace());
        let out = common::bare()
            .args(&args)
            .env("COLUMNS", "100")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let text = String::from_utf8(out).unwrap();
        let name = if command.is_empty() {
            "flume".to_string()
        } else {
            format!("flume {command}")
        };
        let file = dir.join(format!("{}.txt", name.replace(' ', "-")));
        assert!(text.contains("Usage: "), "{name}: {text}");
        if update {
            std::fs::write(&file, &text).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("{}:\n{text}", file.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "help differs from its snapshot (UPDATE_SNAPSHOTS=1 refreshes them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn long_and_short_help_agree_on_the_commands() {
    let short = common::bare()
        .arg("-h")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let short = String::from_utf8(short).unwrap();
    for command in COMMANDS
        .iter()
        .filter(|c| !c.is_empty() && !c.contains(' '))
    {
        assert!(
            short.contains(&format!("\n  {command} ")),
            "{command} is listed:\n{short}"
        );
    }
    common::bare()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("flume "));
}
