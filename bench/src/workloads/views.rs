//! View workloads: one index built over the log beside raw heed puts of the same keys, 4 live
//! views against 1, and key-value gets from 2 threads.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use flume_core::{Db, DbOptions, Log, Postcard, ViewHandle};
use flume_log_offset::{Durability, OffsetLog, Options};
use flume_view_index::{Index, KeyValue, KvReads, KvRecord, KvValue, Lmdb, key};
use heed::EnvOpenOptions;
use heed::types::Bytes as HeedBytes;
use serde_json::Value;

use super::{BenchRecord, Ctx, append_records};
use crate::{Metric, Target};

/// Puts per write transaction in the baseline: the size of the chunks views are fed.
const TXN: usize = flume_core::VIEW_CHUNK;

fn index_key(r: &BenchRecord) -> [Value; 2] {
    [Value::from(r.author.as_str()), Value::from(r.id)]
}

fn offset_log(dir: &Path) -> anyhow::Result<Arc<dyn Log>> {
    // The log's durability is not what these workloads measure.
    Ok(Arc::new(OffsetLog::open_with(
        dir,
        Options::new().durability(Durability::Buffered),
    )?))
}

async fn filled_db(dir: &Path, records: u64) -> anyhow::Result<Db<BenchRecord>> {
    let db = Db::open_with(offset_log(dir)?, Arc::new(Postcard), DbOptions::default()).await?;
    append_records(&db, records, BenchRecord::new).await?;
    Ok(db)
}

fn by_author(lmdb: &Lmdb, name: &str) -> Index<BenchRecord> {
    Index::new(lmdb, name, 1, |r: &BenchRecord, ops| ops.put(index_key(r)))
}

/// Open `dir` with heed directly, as the same-run baselines do.
fn raw_env(dir: &Path) -> anyhow::Result<heed::Env<heed::WithoutTls>> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(4 << 30).max_dbs(1024).max_readers(4096);
    // SAFETY: LMDB must not open a file twice in one process or have it changed under it. The
    // baselines open only directories of this benchmark that no view has open: a fresh one, or
    // the one the key-value view closed before the baseline runs. Nothing else opens them.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(dir)? };
    Ok(env)
}

/// Raw heed: the same keys in the same transaction sizes, each transaction's keys sorted as an
/// index writes them, with nothing else.
fn heed_puts(dir: &Path, records: u64) -> anyhow::Result<f64> {
    std::fs::create_dir_all(dir)?;
    let env = raw_env(dir)?;
    let wtxn = env.write_txn()?;
    let table = env
        .create_databases_and_commit(wtxn, |o, t| {
            o.create_database::<HeedBytes, HeedBytes>(t, Some("baseline"))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit();
    let start = Instant::now();
    let mut id = 0;
    while id < records {
        let mut keys: Vec<(Vec<u8>, u64)> = (id..(id + TXN as u64).min(records))
            .map(|i| (key::encode(&index_key(&BenchRecord::new(i))), i))
            .collect();
        keys.sort_unstable();
        let mut txn = env.write_txn()?;
        for (k, i) in &keys {
            table.put(&mut txn, k, &i.to_be_bytes())?;
        }
        txn.commit()?;
        id += TXN as u64;
    }
    Ok(records as f64 / start.elapsed().as_secs_f64())
}

pub(crate) async fn index_build(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let heed = heed_puts(&ctx.dir.join("heed-baseline"), ctx.records)?;
    let db = filled_db(&ctx.dir.join("index-log"), ctx.records).await?;
    let lmdb = Lmdb::open(ctx.dir.join("index-views"))?;
    let start = Instant::now();
    let index = db
        .use_view("by_author", by_author(&lmdb, "by_author"))
        .await?;
    let built = index.ready().await?;
    let rate = ctx.records as f64 / start.elapsed().as_secs_f64();
    // Counted after the clock stops: reading the index back is not part of building it.
    let entries = built.entries()?.len() as u64;
    ensure!(
        entries == ctx.records,
        "the index holds {entries} of {} entries",
        ctx.records
    );
    db.close().await?;
    Ok(vec![
        Metric::new("heed_put_rec_s", heed, "rec/s"),
        Metric::new("index_build_rec_s", rate, "rec/s").beside("heed_put_rec_s"),
        Metric::new("index_build_heed_ratio", rate / heed, "x")
            .target(Target::AtLeast(0.5))
            .beside("heed_put_rec_s"),
    ])
}

/// Append the records with `views` live indexes, until every view has caught up.
async fn live_views(dir: &Path, records: u64, views: usize) -> anyhow::Result<Duration> {
    let db = Db::open_with(
        offset_log(&dir.join("log"))?,
        Arc::new(Postcard),
        DbOptions::default(),
    )
    .await?;
    let lmdb = Lmdb::open(dir.join("views"))?;
    let mut handles = Vec::new();
    for v in 0..views {
        let name = format!("v{v}");
        let index = Index::new(&lmdb, &name, 1, move |r: &BenchRecord, ops| {
            ops.put([
                Value::from(r.kind.as_str()),
                Value::from(r.id),
                Value::from(v),
            ]);
        });
        handles.push(db.use_view(&name, index).await?);
    }
    let start = Instant::now();
    append_records(&db, records, BenchRecord::new).await?;
    for h in &handles {
        h.ready().await?;
    }
    let took = start.elapsed();
    db.close().await?;
    Ok(took)
}

pub(crate) async fn views4(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let one = live_views(&ctx.dir.join("views1"), ctx.records, 1).await?;
    let four = live_views(&ctx.dir.join("views4"), ctx.records, 4).await?;
    Ok(vec![
        Metric::new(
            "views1_rec_s",
            ctx.records as f64 / one.as_secs_f64(),
            "rec/s",
        ),
        Metric::new(
            "views4_rec_s",
            ctx.records as f64 / four.as_secs_f64(),
            "rec/s",
        ),
        Metric::new(
            "views4_over_views1",
            four.as_secs_f64() / one.as_secs_f64(),
            "x",
        )
        .target(Target::AtMost(2.5)),
    ])
}

pub(crate) async fn kv_get(ctx: &Ctx) -> anyhow::Result<Vec<Metric>> {
    let dir = ctx.dir.join("kv");
    let db: Db<KvRecord> = Db::open_with(
        offset_log(&dir.join("log"))?,
        Arc::new(Postcard),
        DbOptions::default(),
    )
    .await?;
    let lmdb = Lmdb::open(dir.join("views"))?;
    let kv = db.use_view("kv", KeyValue::new(&lmdb, "kv")).await?;
    let keys = ctx.records;
    append_records(&db, keys, |k| KvRecord::Put {
        key: format!("users/{k:08}"),
        value: KvValue::Bytes(vec![b'v'; 32]),
        flags: 0,
        expires: 0,
    })
    .await?;
    kv.ready().await?;
    let per_thread = 500_000u64.min(keys * 4);
    let gated = measure_gets(per_thread, keys, Arc::new(GatedGets(kv.clone())))?;
    db.close().await?;
    drop((kv, lmdb, db));
    // The baseline: raw heed gets of the same keys on the same file, now that the view closed it.
    let raw = raw_gets(&dir.join("views"), per_thread, keys)?;
    Ok(vec![
        Metric::new("heed_get_p50_ns", raw.p50, "ns"),
        Metric::new("heed_get_rec_s", raw.rate, "rec/s"),
        Metric::new("kv_get_p50_ns", gated.p50, "ns")
            .target(Target::AtMost(1000.0))
            .beside("heed_get_p50_ns"),
        Metric::new("kv_get_p99_ns", gated.p99, "ns"),
        Metric::new("kv_get_rec_s", gated.rate, "rec/s")
            .target(Target::AtLeast(2_000_000.0))
            .beside("heed_get_rec_s"),
    ])
}

struct Gets {
    p50: f64,
    p99: f64,
    rate: f64,
}

/// One way of getting a key.
trait Getter: Send + Sync {
    /// Whether `key` was found.
    async fn get(&self, key: &str) -> anyhow::Result<bool>;
}

/// Gated gets through the key-value view.
struct GatedGets(ViewHandle<KeyValue<KvRecord>>);

impl Getter for GatedGets {
    async fn get(&self, key: &str) -> anyhow::Result<bool> {
        Ok(self.0.get(key).await?.is_some())
    }
}

/// Raw heed gets, each thread reusing one read transaction (nothing writes meanwhile): the
/// fastest LMDB gets can be on this machine.
struct RawGets {
    env: heed::Env<heed::WithoutTls>,
    table: heed::Database<'static, HeedBytes, HeedBytes>,
}

thread_local! {
    static RAW_TXN: std::cell::OnceCell<heed::RoTxn<'static, heed::WithoutTls>> =
        const { std::cell::OnceCell::new() };
}

impl Getter for RawGets {
    async fn get(&self, key: &str) -> anyhow::Result<bool> {
        RAW_TXN.with(|cell| {
            let txn = match cell.get() {
                Some(txn) => txn,
                None => {
                    let _ = cell.set(self.env.clone().static_read_txn()?);
                    cell.get().expect("just set")
                }
            };
            Ok(self.table.get(txn, key.as_bytes())?.is_some())
        })
    }
}

/// Random-key gets from 2 threads, each timed; every key must be found. The keys are made
/// before the clock starts, so the figures are the gets' alone.
fn measure_gets<G: Getter + 'static>(
    per_thread: u64,
    keys: u64,
    get: Arc<G>,
) -> anyhow::Result<Gets> {
    let start = Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let (get, start) = (Arc::clone(&get), Arc::clone(&start));
            std::thread::spawn(move || -> anyhow::Result<(Vec<u32>, Duration)> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                let keys: Vec<String> = (0..per_thread)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("users/{:08}", x % keys)
                    })
                    .collect();
                let mut samples = Vec::with_capacity(keys.len());
                start.wait();
                let began = Instant::now();
                rt.block_on(async {
                    for key in &keys {
                        let t0 = Instant::now();
                        let found = get.get(key).await?;
                        samples.push(t0.elapsed().as_nanos() as u32);
                        ensure!(found, "{key} was not found");
                    }
                    Ok(())
                })?;
                Ok((samples, began.elapsed()))
            })
        })
        .collect();
    let (mut samples, mut took) = (Vec::new(), Duration::ZERO);
    for t in threads {
        let (s, d) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a get thread panicked"))??;
        samples.extend(s);
        took = took.max(d);
    }
    let rate = samples.len() as f64 / took.as_secs_f64();
    samples.sort_unstable();
    let at = |q: usize| f64::from(samples[samples.len() * q / 100]);
    Ok(Gets {
        p50: at(50),
        p99: at(99),
        rate,
    })
}

fn raw_gets(dir: &Path, per_thread: u64, keys: u64) -> anyhow::Result<Gets> {
    let env = raw_env(dir)?;
    let rtxn = env.read_txn()?;
    let table = env
        .open_databases_and_commit(rtxn, |o, r| {
            o.open_database::<HeedBytes, HeedBytes>(r, Some("kv:kv"))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })?
        .unwrap_commit()
        .ok_or_else(|| anyhow::anyhow!("no kv table in {}", dir.display()))?;
    measure_gets(per_thread, keys, Arc::new(RawGets { env, table }))
}
