//! The real filesystem: `std::fs` with `pread`/`pwrite`, `fdatasync` and directory fsync.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LockError, LockGuard, Storage, StorageFile};

/// The name of the lock file; it holds the writer's process id.
const LOCK: &str = "LOCK";

/// A directory on the real filesystem.
#[derive(Clone, Debug)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// Use `dir`, creating it (and its parents) if missing, durably (see [`create_dir_synced`]).
    ///
    /// # Errors
    /// I/O errors creating the directory.
    pub fn new(dir: impl AsRef<Path>) -> io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_synced(&dir)?;
        Ok(FsStorage { dir })
    }

    /// Use an existing `dir` without creating anything (read-only opens).
    pub fn existing(dir: impl AsRef<Path>) -> Self {
        FsStorage {
            dir: dir.as_ref().to_path_buf(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Create `dir` and its missing parents, syncing each new directory's parent, so that a power
/// loss cannot take the new directories, and the synced files in them, away: a file's entry is
/// made durable by syncing its directory, but that directory's own entry lives in its parent.
///
/// # Errors
/// I/O errors creating or syncing; `AlreadyExists` when `dir` exists but is not a directory.
pub fn create_dir_synced(dir: &Path) -> io::Result<()> {
    let created = match fs::create_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => match dir.parent() {
            Some(parent) => create_dir_synced(parent).and_then(|()| fs::create_dir(dir)),
            None => Err(e),
        },
        created => created,
    };
    match created {
        Ok(()) => {}
        // There already (or created meanwhile by someone else, who syncs it).
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

impl Storage for FsStorage {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn file_len(&self, name: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path(name))?.len())
    }

    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .open(self.path(name))?;
        Ok(Arc::new(FsFile(file)))
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.path(name))?;
        Ok(Arc::new(FsFile(file)))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path(from), self.path(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn lock(&self) -> Result<LockGuard, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(LOCK))
            .map_err(LockError::Io)?;
        // flock(2): held per open file description, so a second open in this same process
        // conflicts too, and the kernel releases it when the process dies (no stale locks).
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                // The holder may be between taking the lock and writing its pid.
                let _ = file.read_to_string(&mut pid);
                return Err(LockError::Held {
                    holder: describe_holder(pid.trim()),
                });
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        let pid = std::process::id();
        let write_pid = |f: &mut File| -> io::Result<()> {
            f.set_len(0)?;
            f.rewind()?;
            writeln!(f, "{pid}")
        };
        write_pid(&mut file).map_err(LockError::Io)?;
        Ok(LockGuard::new(file))
    }
}

fn describe_holder(pid: &str) -> String {
    match pid.parse::<u32>() {
        Ok(p) if p == std::process::id() => {
            format!("this process (pid {p}), through another open handle")
        }
        Ok(p) => format!("process {p}"),
        Err(_) => "another process (its pid is not yet in the LOCK file)".into(),
    }
}

struct FsFile(File);

impl StorageFile for FsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_synced_makes_missing_parents_and_accepts_an_existing_dir() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a").join("b").join("log");
        create_dir_synced(&dir).expect("created");
        assert!(dir.is_dir());
        create_dir_synced(&dir).expect("an existing directory is fine");
        let file = tmp.path().join("a").join("file");
        fs::write(&file, b"x").expect("write");
        let e = create_dir_synced(&file).expect_err("a file is in the way");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let e = create_dir_synced(&file.join("log")).expect_err("a file is a parent");
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory);
    }
}
