//! Executing memcached commands against the key-value view.

use std::borrow::Cow;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use flume_core::{Seq, ViewHandle};
use flume_store::{Record, Store};
use flume_view_index::{KeyValue, KvEntry, KvReads, KvRecord, KvValue, split_key};
use tokio::task::JoinHandle;

use super::parse::{Command, StoreMode};
use crate::keylocks::KeyLocks;
use crate::metrics::{Metrics, inc};

/// memcached's boundary between relative and absolute expiry times: 30 days, in seconds.
const RELATIVE_LIMIT: i64 = 60 * 60 * 24 * 30;

/// The version reported; clients parse `major.minor.patch`.
const VERSION: &str = concat!("VERSION 1.6.21-flume-", env!("CARGO_PKG_VERSION"));

/// What the connection does after a command.
pub(crate) enum Flow {
    Continue,
    Close,
}

/// Shared by every memcached connection.
pub(crate) struct Engine {
    store: Arc<Store>,
    kv: ViewHandle<KeyValue<Record>>,
    collection: String,
    prefix: String,
    locks: Arc<KeyLocks>,
    pub(crate) metrics: Arc<Metrics>,
    max_value: usize,
    max_connections: usize,
    pub(super) parse_limits: super::parse::ParseLimits,
    delayed_flush: Mutex<Option<JoinHandle<()>>>,
    started: Instant,
}

/// The unix time now, in seconds.
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// memcached's expiry rules, as the key-value view's `expires` (unix seconds, 0 = never):
/// 0 never expires; a negative time has already expired; up to 30 days is relative to now;
/// anything larger is an absolute unix time.
pub(crate) fn expires_at(exptime: i64, now: u64) -> u64 {
    match exptime {
        0 => 0,
        t if t < 0 => 1,
        t if t <= RELATIVE_LIMIT => now.saturating_add(t.unsigned_abs()),
        t => t.unsigned_abs(),
    }
}

/// A failed command's reply.
type Reply = Cow<'static, str>;

fn one_line(message: impl std::fmt::Display) -> String {
    message.to_string().replace(['\r', '\n'], " ")
}

impl Engine {
    pub(crate) fn new(
        store: Arc<Store>,
        collection: &str,
        locks: Arc<KeyLocks>,
        metrics: Arc<Metrics>,
        limits: &crate::Limits,
    ) -> Result<Self, String> {
        let kv = store.kv().map_err(|e| e.to_string())?.clone();
        flume_view_index::check_collection(collection).map_err(|e| e.to_string())?;
        Ok(Engine {
            store,
            kv,
            collection: collection.to_string(),
            prefix: format!("{collection}/"),
            locks,
            metrics,
            max_value: limits.max_value_bytes,
            max_connections: limits.max_connections,
            parse_limits: super::parse::ParseLimits {
                max_line: limits.max_line_bytes,
                max_value: limits.max_value_bytes,
            },
            delayed_flush: Mutex::new(None),
            started: Instant::now(),
        })
    }

    /// Run one command, appending its reply to `out`.
    pub(crate) async fn execute(&self, cmd: Command, out: &mut Vec<u8>) -> Flow {
        inc(&self.metrics.mc_commands);
        let (reply, noreply) = match cmd {
            Command::Get { keys, cas } => (self.get(&keys, cas, None, out).await, false),
            Command::Gat { exptime, keys, cas } => {
                (self.get(&keys, cas, Some(exptime), out).await, false)
            }
            Command::Store {
                mode,
                key,
                flags,
                exptime,
                data,
                noreply,
            } => (self.store(mode, &key, flags, exptime, data).await, noreply),
            Command::Delete { key, noreply } => (self.delete(&key).await, noreply),
            Command::Arith {
                incr,
                key,
                delta,
                noreply,
            } => (self.arith(incr, &key, delta).await, noreply),
            Command::Touch {
                key,
                exptime,
                noreply,
            } => (self.touch(&key, exptime).await, noreply),
            Command::FlushAll { delay, noreply } => (self.flush_all(delay).await, noreply),
            Command::Version => (Ok(Cow::Borrowed(VERSION)), false),
            Command::Verbosity { noreply } => (Ok(Cow::Borrowed("OK")), noreply),
            Command::Stats { group } => (self.stats(group.as_deref(), out), false),
            Command::Quit => return Flow::Close,
        };
        let line = match reply {
            Ok(line) => line,
            Err(line) => {
                inc(&self.metrics.mc_errors);
                line
            }
        };
        if !noreply && !line.is_empty() {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Flow::Continue
    }

    /// The key-value key of a memcached key. memcached keys are bytes; key-value keys are
    /// UTF-8 without control characters, so other keys are refused.
    fn key(&self, key: &[u8]) -> Result<String, Reply> {
        let text = std::str::from_utf8(key)
            .map_err(|_| Cow::Borrowed("CLIENT_ERROR bad key: keys must be UTF-8"))?;
        let full = format!("{}{text}", self.prefix);
        match split_key(&full) {
            Ok(_) => Ok(full),
            Err(e) => Err(Cow::Owned(format!("CLIENT_ERROR bad key: {}", one_line(e)))),
        }
    }

    /// The live entry of `key`, read after the view includes every acknowledged write.
    async fn read(&self, key: &str) -> Result<Option<KvEntry>, Reply> {
        self.kv
            .get(key)
            .await
            .map_err(|e| Cow::Owned(format!("SERVER_ERROR {}", one_line(e))))
    }

    async fn append(&self, record: KvRecord, bytes: usize) -> Result<Seq, Reply> {
        match self.store.db().append(Record::Kv(record)).await {
            Ok(seq) => {
                self.metrics.appended(1, bytes as u64);
                inc(&self.metrics.mc_writes);
                Ok(seq)
            }
            Err(e) => {
                inc(&self.metrics.append_errors);
                Err(Cow::Owned(format!("SERVER_ERROR {}", one_line(e.error))))
            }
        }
    }

    async fn put(&self, key: &str, value: Vec<u8>, flags: u32, expires: u64) -> Result<Seq, Reply> {
        let bytes = value.len();
        self.append(
            KvRecord::Put {
                key: key.to_string(),
                value: KvValue::Bytes(value),
                flags,
                expires,
            },
            bytes,
        )
        .await
    }

    async fn get(
        &self,
        keys: &[Vec<u8>],
        cas: bool,
        touch: Option<i64>,
        out: &mut Vec<u8>,
    ) -> Result<Reply, Reply> {
        // One wait for the view serves every key: each is then read as of at least that point.
        if touch.is_none() {
            self.kv
                .ready()
                .await
                .map_err(|e| Cow::Owned(format!("SERVER_ERROR {}", one_line(e))))?;
        }
        let expires = touch.map(|t| expires_at(t, now_unix()));
        for key in keys {
            // A key that cannot be stored is never found.
            let Ok(full) = self.key(key) else {
                inc(&self.metrics.mc_get_misses);
                continue;
            };
            let entry = match expires {
                None => self
                    .kv
                    .get_stale(&full)
                    .map_err(|e| Cow::Owned(format!("SERVER_ERROR {}", one_line(e))))?,
                Some(expires) => {
                    let _guard = self.locks.lock(&full).await;
                    match self.read(&full).await? {
                        None => None,
                        Some(mut e) => {
                            let value = value_bytes(e.value);
                            e.seq = self.put(&full, value.clone(), e.flags, expires).await?;
                            e.value = KvValue::Bytes(value);
                            Some(e)
                        }
                    }
                }
            };
            let Some(entry) = entry else {
                inc(&self.metrics.mc_get_misses);
                continue;
            };
            inc(&self.metrics.mc_get_hits);
            let value = value_bytes(entry.value);
            out.extend_from_slice(b"VALUE ");
            out.extend_from_slice(key);
            let _ = write!(out, " {} {}", entry.flags, value.len());
            if cas {
                let _ = write!(out, " {}", entry.seq.0);
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\n");
        }
        Ok(Cow::Borrowed("END"))
    }

    async fn store(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: Vec<u8>,
    ) -> Result<Reply, Reply> {
        let key = self.key(key)?;
        let expires = expires_at(exptime, now_unix());
        let _guard = self.locks.lock(&key).await;
        let current = match mode {
            StoreMode::Set => None,
            _ => self.read(&key).await?,
        };
        let (value, flags, expires) = match (mode, current) {
            (StoreMode::Set, _) | (StoreMode::Add, None) | (StoreMode::Replace, Some(_)) => {
                (data, flags, expires)
            }
            (StoreMode::Add, Some(_))
            | (StoreMode::Replace | StoreMode::Append | StoreMode::Prepend, None) => {
                return Ok(Cow::Borrowed("NOT_STORED"));
            }
            (StoreMode::Cas(_), None) => return Ok(Cow::Borrowed("NOT_FOUND")),
            (StoreMode::Cas(unique), Some(e)) if e.seq.0 != unique => {
                return Ok(Cow::Borrowed("EXISTS"));
            }
            (StoreMode::Cas(_), Some(_)) => (data, flags, expires),
            // append and prepend keep the stored flags and expiry, as memcached does.
            (StoreMode::Append, Some(e)) => {
                let mut value = value_bytes(e.value);
                value.extend_from_slice(&data);
                (value, e.flags, e.expires)
            }
            (StoreMode::Prepend, Some(e)) => {
                let mut value = data;
                value.extend_from_slice(&value_bytes(e.value));
                (value, e.flags, e.expires)
            }
        };
        if value.len() > self.max_value {
            return Err(Cow::Borrowed("SERVER_ERROR object too large for cache"));
        }
        self.put(&key, value, flags, expires).await?;
        Ok(Cow::Borrowed("STORED"))
    }

    async fn delete(&self, key: &[u8]) -> Result<Reply, Reply> {
        let key = self.key(key)?;
        let _guard = self.locks.lock(&key).await;
        if self.read(&key).await?.is_none() {
            return Ok(Cow::Borrowed("NOT_FOUND"));
        }
        self.append(KvRecord::Delete { key }, 0).await?;
        Ok(Cow::Borrowed("DELETED"))
    }

    async fn arith(&self, incr: bool, key: &[u8], delta: u64) -> Result<Reply, Reply> {
        let key = self.key(key)?;
        let _guard = self.locks.lock(&key).await;
        let Some(entry) = self.read(&key).await? else {
            return Ok(Cow::Borrowed("NOT_FOUND"));
        };
        let value = value_bytes(entry.value);
        let Some(n) = parse_counter(&value) else {
            return Err(Cow::Borrowed(
                "CLIENT_ERROR cannot increment or decrement non-numeric value",
            ));
        };
        // incr wraps at 2^64; decr stops at 0 (memcached's rules).
        let n = if incr {
            n.wrapping_add(delta)
        } else {
            n.saturating_sub(delta)
        };
        let text = n.to_string();
        self.put(&key, text.clone().into_bytes(), entry.flags, entry.expires)
            .await?;
        Ok(Cow::Owned(text))
    }

    async fn touch(&self, key: &[u8], exptime: i64) -> Result<Reply, Reply> {
        let key = self.key(key)?;
        let expires = expires_at(exptime, now_unix());
        let _guard = self.locks.lock(&key).await;
        let Some(entry) = self.read(&key).await? else {
            return Ok(Cow::Borrowed("NOT_FOUND"));
        };
        self.put(&key, value_bytes(entry.value), entry.flags, expires)
            .await?;
        Ok(Cow::Borrowed("TOUCHED"))
    }

    async fn flush_all(&self, delay: i64) -> Result<Reply, Reply> {
        let pending = self
            .delayed_flush
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // A newer flush_all replaces a pending delayed one, as in memcached.
        if let Some(pending) = pending {
            pending.abort();
        }
        if delay <= 0 {
            flush_now(&self.store, &self.locks, &self.collection, &self.metrics).await?;
            return Ok(Cow::Borrowed("OK"));
        }
        // The delay follows the expiry rules (relative up to 30 days, else absolute). A delayed
        // flush lives in memory only: a restart before it fires cancels it.
        let at = expires_at(delay, now_unix());
        let wait = std::time::Duration::from_secs(at.saturating_sub(now_unix()));
        let (store, locks, collection, metrics) = (
            Arc::clone(&self.store),
            Arc::clone(&self.locks),
            self.collection.clone(),
            Arc::clone(&self.metrics),
        );
        let task = tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = flush_now(&store, &locks, &collection, &metrics).await;
        });
        *self.delayed_flush.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(Cow::Borrowed("OK"))
    }

    fn stats(&self, group: Option<&[u8]>, out: &mut Vec<u8>) -> Result<Reply, Reply> {
        let m = &self.metrics;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let mut stat = |name: &str, value: &dyn std::fmt::Display| {
            let _ = write!(out, "STAT {name} {value}\r\n");
        };
        match group {
            None => {
                stat("pid", &std::process::id());
                stat("uptime", &self.started.elapsed().as_secs());
                stat("time", &now_unix());
                stat("version", &VERSION.trim_start_matches("VERSION "));
                stat("pointer_size", &(usize::BITS));
                stat("curr_connections", &m.mc_connections.get());
                stat("total_connections", &get(&m.mc_connections_total));
                stat("rejected_connections", &get(&m.connections_rejected));
                stat("cmd_get", &(get(&m.mc_get_hits) + get(&m.mc_get_misses)));
                stat("cmd_set", &get(&m.mc_writes));
                stat("get_hits", &get(&m.mc_get_hits));
                stat("get_misses", &get(&m.mc_get_misses));
                stat(
                    "log_since",
                    &self.store.db().since().map_or(-1, |s| s.0 as i128),
                );
                stat("kv_collection", &self.collection);
            }
            Some(b"settings") => {
                stat("maxconns", &self.max_connections);
                stat("item_size_max", &self.max_value);
                stat("evictions", &"off");
                stat("cas_enabled", &"yes");
            }
            Some(b"items" | b"slabs" | b"sizes" | b"conns") => {}
            _ => return Err(Cow::Borrowed("ERROR")),
        }
        Ok(Cow::Borrowed("END"))
    }
}

/// Delete every key of the collection, with every stripe held so no read-modify-write
/// straddles the flush.
async fn flush_now(
    store: &Store,
    locks: &KeyLocks,
    collection: &str,
    metrics: &Metrics,
) -> Result<Seq, Reply> {
    let _all = locks.lock_all().await;
    match store
        .db()
        .append(Record::Kv(KvRecord::DeleteAll {
            collection: collection.to_string(),
        }))
        .await
    {
        Ok(seq) => {
            metrics.appended(1, 0);
            inc(&metrics.mc_writes);
            Ok(seq)
        }
        Err(e) => {
            inc(&metrics.append_errors);
            Err(Cow::Owned(format!("SERVER_ERROR {}", one_line(e.error))))
        }
    }
}

/// A value as memcached bytes: raw bytes as stored, documents as their JSON text.
fn value_bytes(value: KvValue) -> Vec<u8> {
    match value {
        KvValue::Bytes(b) => b,
        KvValue::Document(d) => serde_json::to_vec(&d).unwrap_or_default(),
    }
}

/// A counter value: decimal digits, optionally followed by spaces (memcached pads in place).
fn parse_counter(value: &[u8]) -> Option<u64> {
    let digits = value.trim_ascii_end();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_memcached() {
        let now = 1_700_000_000;
        assert_eq!(expires_at(0, now), 0);
        assert_eq!(expires_at(-1, now), 1);
        assert_eq!(expires_at(10, now), now + 10);
        assert_eq!(expires_at(RELATIVE_LIMIT, now), now + RELATIVE_LIMIT as u64);
        assert_eq!(
            expires_at(RELATIVE_LIMIT + 1, now),
            RELATIVE_LIMIT as u64 + 1
        );
        assert_eq!(expires_at(1_800_000_000, now), 1_800_000_000);
    }

    #[test]
    fn counters() {
        assert_eq!(parse_counter(b"10"), Some(10));
        assert_eq!(parse_counter(b"9 "), Some(9));
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b"18446744073709551616"), None);
    }
}
