//! The named workloads. Each returns its metrics; later issues add workloads here.

mod append;
mod query;
mod reopen;
mod server;
mod stream;
mod views;

use std::path::PathBuf;

use anyhow::bail;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::Metric;

/// What every workload gets: the record count and a scratch directory on the measured disk.
pub(crate) struct Ctx {
    pub(crate) records: u64,
    pub(crate) dir: PathBuf,
}

/// A workload's entry point: the metrics it measured.
type RunFn = for<'a> fn(&'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Metric>>>;

pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) about: &'static str,
    pub(crate) run: RunFn,
}

pub(crate) fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "disk",
            about: "baseline: sequential write + fdatasync per 100 KB, MB/s",
            run: |ctx| Box::pin(append::disk(ctx)),
        },
        Workload {
            name: "append_batch",
            about: "log-offset, Sync: 100-byte records in batches of 1000, in rounds alternating with the disk baseline",
            run: |ctx| Box::pin(append::append_batch(ctx)),
        },
        Workload {
            name: "append_durable",
            about: "log-offset, Sync: awaited single appends from 1 and 64 writers",
            run: |ctx| Box::pin(append::durable(ctx)),
        },
        Workload {
            name: "stream_fwd",
            about: "log-offset: decoded forward scan of every record, from the page cache, beside decoding alone",
            run: |ctx| Box::pin(stream::offset(ctx, false)),
        },
        Workload {
            name: "stream_rev",
            about: "log-offset: decoded reverse scan of every record, from the page cache, beside decoding alone",
            run: |ctx| Box::pin(stream::offset(ctx, true)),
        },
        Workload {
            name: "reopen",
            about: "log-offset: open a 1 GiB log (at the default --records; scaled with it)",
            run: |ctx| Box::pin(reopen::reopen(ctx)),
        },
        Workload {
            name: "rss",
            about: "log-offset: peak RSS of a process appending 10 × --records (10M at the default)",
            run: |ctx| Box::pin(reopen::rss(ctx)),
        },
        Workload {
            name: "index_build",
            about: "one LMDB index built over the log, beside raw heed puts of the same keys",
            run: |ctx| Box::pin(views::index_build(ctx)),
        },
        Workload {
            name: "views4",
            about: "appending with 4 live indexes against 1, until all caught up",
            run: |ctx| Box::pin(views::views4(ctx)),
        },
        Workload {
            name: "kv_get",
            about: "gated key-value gets of random keys from 2 threads",
            run: |ctx| Box::pin(views::kv_get(ctx)),
        },
        Workload {
            name: "memcached",
            about: "memcached protocol gets and sets, beside Debian's memcached, same load generator",
            run: |ctx| Box::pin(server::memcached_protocol(ctx)),
        },
        Workload {
            name: "http_append",
            about: "HTTP appends from 64 clients, beside the same appends in-process",
            run: |ctx| Box::pin(server::http_append(ctx)),
        },
        Workload {
            name: "sse_fanout",
            about: "SSE fan-out to 100 subscribers: delivery latency beside append latency",
            run: |ctx| Box::pin(server::sse_fanout(ctx)),
        },
        Workload {
            name: "query",
            about: "a 0.1%-selective query through its index and as a full scan",
            run: |ctx| Box::pin(query::query(ctx)),
        },
        Workload {
            name: "mem_append_batch",
            about: "log-memory: 100-byte records in batches of 1000",
            run: |ctx| Box::pin(append::mem_append_batch(ctx)),
        },
        Workload {
            name: "mem_stream_fwd",
            about: "log-memory: decoded forward scan of every record, beside decoding alone",
            run: |ctx| Box::pin(stream::memory(ctx, false)),
        },
        Workload {
            name: "mem_stream_rev",
            about: "log-memory: decoded reverse scan of every record, beside decoding alone",
            run: |ctx| Box::pin(stream::memory(ctx, true)),
        },
    ]
}

pub(crate) fn select<'a>(
    all: &'a [Workload],
    names: &[String],
) -> anyhow::Result<Vec<&'a Workload>> {
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    names.iter().map(|name| find(all, name)).collect()
}

/// The workload called `name`, or an error listing the known ones.
pub(crate) fn find<'a>(all: &'a [Workload], name: &str) -> anyhow::Result<&'a Workload> {
    let Some(w) = all.iter().find(|w| w.name == name) else {
        let known: Vec<_> = all.iter().map(|w| w.name).collect();
        bail!(
            "unknown workload {name:?}; known workloads: {}",
            known.join(", ")
        );
    };
    Ok(w)
}

/// Append the records `make(0..records)` in batches of 1,000.
pub(crate) async fn append_records<T>(
    db: &flume_core::Db<T>,
    records: u64,
    make: impl Fn(u64) -> T,
) -> anyhow::Result<()>
where
    T: Send + Sync + 'static,
{
    let mut id = 0;
    while id < records {
        let n = 1000.min(records - id);
        db.append_batch((id..id + n).map(&make).collect()).await?;
        id += n;
    }
    Ok(())
}

/// A typed record of 100 bytes on average (97–101) once encoded with postcard, the size design.md §7
/// names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BenchRecord {
    pub(crate) id: u64,
    pub(crate) author: String,
    pub(crate) kind: String,
    pub(crate) body: String,
}

impl BenchRecord {
    pub(crate) fn new(id: u64) -> Self {
        BenchRecord {
            id,
            author: format!("@author{:04}", id % 1000),
            kind: ["post", "like", "follow", "reply"][(id % 4) as usize].to_string(),
            body: format!("{:0>78}", id),
        }
    }
}

#[cfg(test)]
mod tests {
    use flume_core::{Codec, Postcard};

    use super::BenchRecord;

    /// The stream and view figures are for 100-byte records: so are these, encoded.
    #[test]
    fn bench_records_encode_to_about_100_bytes() {
        let sizes: Vec<usize> = (0..1_000_000)
            .step_by(997)
            .map(|id| {
                Codec::<BenchRecord>::encode(&Postcard, &BenchRecord::new(id)).map(|b| b.len())
            })
            .collect::<Result<_, _>>()
            .expect("bench records encode");
        let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
        assert!((99.0..=101.0).contains(&mean), "mean {mean}");
        assert!(sizes.iter().all(|n| (97..=101).contains(n)), "{sizes:?}");
    }
}
