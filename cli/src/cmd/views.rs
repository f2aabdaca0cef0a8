//! `flume views`: each declared view's name, kind, version, since, lag and state.

use std::path::Path;

use serde_json::{Value, json};

use crate::out::{self, Format, Out};
use crate::{open, stored};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Wait for every view to catch up with the log and join the live feed, and add the reduce
    /// views' values
    #[arg(long)]
    values: bool,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let store = open::store(db, false).await?;
    let result = async {
        let mut rows = Vec::new();
        for ((name, view), spec) in store.views().iter().zip(&store.config().views) {
            let value = if args.values {
                // Caught up and on the live feed, so the status below is not a moment of
                // `building` between the two.
                view.live().await?;
                view.value().await?.unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            let s = view.status();
            let mut row = json!({
                "name": name,
                "kind": stored::kind_name(&spec.kind),
                "version": s.version,
                "since": s.since.map(|s| s.0),
                "lag": s.lag,
                "state": s.state.to_string(),
            });
            if args.values {
                row["value"] = value;
            }
            rows.push(row);
        }
        let mut out = Out::new();
        match args.format {
            Format::Json => {
                for row in &rows {
                    out.json(row)?;
                }
            }
            Format::Table => {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        let mut cells: Vec<String> =
                            ["name", "kind", "version", "since", "lag", "state"]
                                .iter()
                                .map(|k| match &r[*k] {
                                    Value::String(s) => s.clone(),
                                    Value::Null => "-".into(),
                                    v => v.to_string(),
                                })
                                .collect();
                        if args.values {
                            cells.push(if r["value"].is_null() {
                                "-".into()
                            } else {
                                r["value"].to_string()
                            });
                        }
                        cells
                    })
                    .collect();
                let mut header = vec!["name", "kind", "version", "since", "lag", "state"];
                if args.values {
                    header.push("value");
                }
                out.text(&out::table(&header, &cells))?;
            }
        }
        out.flush()
    }
    .await;
    let closed = store.close().await;
    result?;
    Ok(closed?)
}
