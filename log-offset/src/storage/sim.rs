//! An in-memory [`Storage`] that injects faults and simulates power loss.
//!
//! Every file keeps its durable content and the writes made since its last `sync_data`; the
//! directory keeps its durable names and the operations since its last `sync_dir`. A power-loss
//! image starts from the durable state and replays the unsynced operations the way a disk may:
//! each 512-byte sector of an unsynced write survives or not independently (so writes are torn and
//! reordered at sector granularity), an unsynced truncation survives or not, and a random prefix
//! of the unsynced directory operations survives.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::{LockError, LockGuard, Storage, StorageFile};
use crate::log::lock;

const SECTOR: u64 = 512;
const EIO: i32 = 5;

/// Which operations a [`Fault`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultOp {
    /// File writes.
    Write,
    /// File `sync_data`.
    Sync,
    /// Directory sync.
    SyncDir,
    /// File creation.
    Create,
    /// File removal.
    Remove,
    /// Every mutating operation.
    Any,
}

/// An injected I/O error: the matching operations after the first `after` ones fail with `errno`,
/// `times` times (forever when `None`).
#[derive(Clone, Debug)]
pub struct Fault {
    op: FaultOp,
    after: u64,
    times: Option<u64>,
    errno: i32,
}

impl Fault {
    /// Fail every matching operation with EIO from now on.
    pub fn new(op: FaultOp) -> Self {
        Fault {
            op,
            after: 0,
            times: None,
            errno: EIO,
        }
    }
    /// Let `n` matching operations succeed first.
    pub fn after(mut self, n: u64) -> Self {
        self.after = n;
        self
    }
    /// Fail only `n` times.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }
    /// Fail with this OS error number (5 = EIO, 28 = ENOSPC).
    pub fn errno(mut self, errno: i32) -> Self {
        self.errno = errno;
        self
    }
}

/// Simulated storage: see the module docs. Clones share the same files.
#[derive(Clone, Default)]
pub struct SimStorage {
    inner: Arc<Mutex<Sim>>,
    /// While true, file syncs wait (see [`hold_syncs`](Self::hold_syncs)).
    syncs_held: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Default, Clone)]
struct Sim {
    files: HashMap<u64, SimFile>,
    next_ino: u64,
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    dir_log: Vec<DirOp>,
    faults: Vec<Fault>,
    /// Mutating operations left before the simulated power loss.
    crash_in: Option<u64>,
    /// The machine lost power: the state at that instant, and every later mutation fails.
    crashed: Option<Box<Sim>>,
    locked: bool,
    /// Mutating operations attempted so far.
    ops: u64,
}

#[derive(Default, Clone)]
struct SimFile {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<FileOp>,
}

#[derive(Clone)]
enum FileOp {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

#[derive(Clone)]
enum DirOp {
    Link(String, u64),
    Rename(String, String),
    Remove(String),
}

impl SimStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inject a fault.
    pub fn inject(&self, fault: Fault) {
        self.sim().faults.push(fault);
    }

    /// Remove all injected faults.
    pub fn clear_faults(&self) {
        self.sim().faults.clear();
    }

    /// Lose power after `n` more mutating operations: the state then is kept for
    /// [`crash_image`](Self::crash_image) and every later mutation fails with EIO, as if the
    /// process died with the machine.
    pub fn crash_after(&self, n: u64) {
        self.sim().crash_in = Some(n);
    }

    /// How many mutating operations (writes, syncs, truncations, creations, renames, removals,
    /// directory syncs) were attempted: the range of useful [`crash_after`](Self::crash_after)
    /// points.
    pub fn ops(&self) -> u64 {
        self.sim().ops
    }

    /// Make every file sync wait, outside the storage's lock, until
    /// [`release_syncs`](Self::release_syncs): appends then queue up behind a sync in progress,
    /// as behind a slow disk.
    pub fn hold_syncs(&self) {
        *lock(&self.syncs_held.0) = true;
    }

    /// Let held and later file syncs run.
    pub fn release_syncs(&self) {
        *lock(&self.syncs_held.0) = false;
        self.syncs_held.1.notify_all();
    }

    fn wait_while_syncs_held(&self) {
        let (held, released) = &*self.syncs_held;
        let mut held = lock(held);
        while *held {
            held = released.wait(held).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// True once the simulated power loss happened.
    pub fn crashed(&self) -> bool {
        self.sim().crashed.is_some()
    }

    /// The disk as a reboot would find it: after the simulated power loss if it happened, else
    /// as if power were lost now. Unsynced writes are dropped or torn using `seed`.
    pub fn crash_image(&self, seed: u64) -> SimStorage {
        let sim = self.sim();
        let at = sim.crashed.as_deref().unwrap_or(&sim);
        SimStorage {
            inner: Arc::new(Mutex::new(at.image(seed))),
            syncs_held: Arc::default(),
        }
    }

    /// The current (volatile, as the page cache shows it) content of `name`.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        let sim = self.sim();
        let ino = sim.names.get(name)?;
        Some(sim.files.get(ino)?.data.clone())
    }

    /// Replace the content of `name` and make it durable (tests use it to corrupt a log).
    pub fn write_file(&self, name: &str, data: Vec<u8>) {
        let mut sim = self.sim();
        let ino = match sim.names.get(name) {
            Some(ino) => *ino,
            None => {
                let ino = sim.new_ino();
                sim.names.insert(name.to_string(), ino);
                sim.durable_names.insert(name.to_string(), ino);
                ino
            }
        };
        sim.files.insert(
            ino,
            SimFile {
                durable: data.clone(),
                data,
                pending: Vec::new(),
            },
        );
    }

    fn sim(&self) -> MutexGuard<'_, Sim> {
        lock(&self.inner)
    }
}

impl Sim {
    fn new_ino(&mut self) -> u64 {
        self.next_ino += 1;
        self.next_ino
    }

    /// Account one mutating operation: power loss and injected faults happen here.
    fn mutate(&mut self, op: FaultOp) -> io::Result<()> {
        self.ops += 1;
        if self.crashed.is_some() {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        if let Some(n) = self.crash_in {
            if n == 0 {
                let mut state = self.clone();
                state.crashed = None;
                self.crashed = Some(Box::new(state));
                return Err(io::Error::from_raw_os_error(EIO));
            }
            self.crash_in = Some(n - 1);
        }
        for f in &mut self.faults {
            if f.op != op && f.op != FaultOp::Any {
                continue;
            }
            if f.after > 0 {
                f.after -= 1;
                continue;
            }
            match &mut f.times {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
            return Err(io::Error::from_raw_os_error(f.errno));
        }
        Ok(())
    }

    fn file(&mut self, ino: u64) -> &mut SimFile {
        self.files.entry(ino).or_default()
    }

    fn image(&self, seed: u64) -> Sim {
        let mut rng = SplitMix(seed);
        // How likely an unsynced sector is to have reached the disk: all, none, or some.
        let p = match rng.below(4) {
            0 => 0.0,
            1 => 1.0,
            2 => 0.5,
            _ => rng.unit(),
        };
        let mut names = self.durable_names.clone();
        let keep = rng.below(self.dir_log.len() as u64 + 1) as usize;
        for op in &self.dir_log[..keep] {
            match op {
                DirOp::Link(n, ino) => {
                    names.insert(n.clone(), *ino);
                }
                DirOp::Rename(from, to) => {
                    if let Some(ino) = names.remove(from) {
                        names.insert(to.clone(), ino);
                    }
                }
                DirOp::Remove(n) => {
                    names.remove(n);
                }
            }
        }
        let mut files = HashMap::new();
        for ino in names.values() {
            let Some(f) = self.files.get(ino) else {
                continue;
            };
            let mut data = f.durable.clone();
            for op in &f.pending {
                match op {
                    FileOp::Write(off, buf) => {
                        let mut at = *off;
                        let end = off + buf.len() as u64;
                        while at < end {
                            let next = ((at / SECTOR) + 1) * SECTOR;
                            let to = next.min(end);
                            if rng.unit() < p {
                                let s = &buf[(at - off) as usize..(to - off) as usize];
                                write_at(&mut data, at, s);
                            }
                            at = to;
                        }
                    }
                    FileOp::SetLen(len) => {
                        if rng.below(2) == 0 {
                            data.resize(*len as usize, 0);
                        }
                    }
                }
            }
            files.insert(
                *ino,
                SimFile {
                    durable: data.clone(),
                    data,
                    pending: Vec::new(),
                },
            );
        }
        Sim {
            files,
            next_ino: self.next_ino,
            durable_names: names.clone(),
            names,
            ..Sim::default()
        }
    }
}

fn write_at(data: &mut Vec<u8>, off: u64, buf: &[u8]) {
    let end = off as usize + buf.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[off as usize..end].copy_from_slice(buf);
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

impl Storage for SimStorage {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("sim:").join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.sim().names.keys().cloned().collect())
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        let sim = self.sim();
        let ino = sim.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(sim.files.get(ino).map_or(0, |f| f.data.len() as u64))
    }

    fn open(&self, name: &str, _write: bool) -> io::Result<Arc<dyn StorageFile>> {
        let sim = self.sim();
        let ino = *sim.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(Arc::new(SimHandle {
            sim: self.clone(),
            ino,
        }))
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let mut sim = self.sim();
        if sim.names.contains_key(name) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, name));
        }
        sim.mutate(FaultOp::Create)?;
        let ino = sim.new_ino();
        sim.files.insert(ino, SimFile::default());
        sim.names.insert(name.to_string(), ino);
        sim.dir_log.push(DirOp::Link(name.to_string(), ino));
        Ok(Arc::new(SimHandle {
            sim: self.clone(),
            ino,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut sim = self.sim();
        let ino = *sim.names.get(from).ok_or_else(|| not_found(from))?;
        sim.mutate(FaultOp::Any)?;
        sim.names.remove(from);
        sim.names.insert(to.to_string(), ino);
        sim.dir_log
            .push(DirOp::Rename(from.to_string(), to.to_string()));
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut sim = self.sim();
        if !sim.names.contains_key(name) {
            return Err(not_found(name));
        }
        sim.mutate(FaultOp::Remove)?;
        sim.names.remove(name);
        sim.dir_log.push(DirOp::Remove(name.to_string()));
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut sim = self.sim();
        sim.mutate(FaultOp::SyncDir)?;
        sim.durable_names = sim.names.clone();
        sim.dir_log.clear();
        Ok(())
    }

    fn lock(&self) -> Result<LockGuard, LockError> {
        let mut sim = self.sim();
        if sim.locked {
            return Err(LockError::Held {
                holder: "another log open on this simulated storage".into(),
            });
        }
        sim.locked = true;
        Ok(LockGuard::new(SimLock(self.clone())))
    }
}

struct SimLock(SimStorage);

impl Drop for SimLock {
    fn drop(&mut self) {
        self.0.sim().locked = false;
    }
}

struct SimHandle {
    sim: SimStorage,
    ino: u64,
}

impl StorageFile for SimHandle {
    fn len(&self) -> io::Result<u64> {
        Ok(self.sim.sim().file(self.ino).data.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let mut sim = self.sim.sim();
        let data = &sim.file(self.ino).data;
        let end = offset as usize + buf.len();
        if end > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            ));
        }
        buf.copy_from_slice(&data[offset as usize..end]);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut sim = self.sim.sim();
        sim.mutate(FaultOp::Write)?;
        let f = sim.file(self.ino);
        write_at(&mut f.data, offset, buf);
        f.pending.push(FileOp::Write(offset, buf.to_vec()));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sim.wait_while_syncs_held();
        let mut sim = self.sim.sim();
        // A failed sync leaves the pending writes pending: whether they reach the disk is
        // unknown, exactly the situation of a real failed fsync.
        sim.mutate(FaultOp::Sync)?;
        let f = sim.file(self.ino);
        for op in std::mem::take(&mut f.pending) {
            match op {
                FileOp::Write(off, buf) => write_at(&mut f.durable, off, &buf),
                FileOp::SetLen(len) => f.durable.resize(len as usize, 0),
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut sim = self.sim.sim();
        sim.mutate(FaultOp::Any)?;
        let f = sim.file(self.ino);
        f.data.resize(len as usize, 0);
        f.pending.push(FileOp::SetLen(len));
        Ok(())
    }
}

/// A small deterministic PRNG (SplitMix64): enough to tear writes reproducibly from a seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
