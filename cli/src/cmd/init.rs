//! `flume init [DIR]`: create a database directory with a commented flume.toml.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flume_store::{CONFIG_FILE, TEMPLATE};
use serde_json::json;

use crate::out::Out;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory to create (default: --db)
    dir: Option<PathBuf>,
}

pub(crate) fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let dir = args.dir.as_deref().unwrap_or(db);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(CONFIG_FILE);
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
            "{} already exists: edit it (after changing a view, bump its `version`), or remove it to start from \
             the template",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    file.write_all(TEMPLATE.as_bytes())?;
    file.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    tracing::info!(
        "created {}; append with `flume --db {} append '{{\"hello\":\"world\"}}'`",
        path.display(),
        dir.display()
    );
    let mut out = Out::new();
    out.json(&json!({ "db": dir, "config": path }))?;
    out.flush()
}
