//! Local folders: every object is written to a unique temporary file, fsynced and renamed into
//! place, so a killed build never leaves a half-written object under a real key. Temporary
//! names carry the writer's process id and host, so that a later run can remove the ones left
//! by dead processes of its own machine without touching those of live writers.
//!
//! zarrs_storage's `AtomicWriteStorageAdapter` does not fit: its fixed `.tmp` suffix makes two
//! concurrent writers of one key collide, and a leftover temporary blocks every later write.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{
    AtomicRenameStorageTraits, Bytes, ListableStorageTraits, MaybeBytesIterator,
    OffsetBytesIterator, ReadableStorageTraits, StorageError, StoreKey, StoreKeys,
    StoreKeysPrefixes, StorePrefix, WritableStorageTraits, byte_range::ByteRangeIterator,
};

use super::handle::{Store, StoreError};

/// A local filesystem store whose writes are atomic: unique temporary file, fsync, rename.
#[derive(Debug)]
pub struct AtomicFilesystemStore {
    inner: FilesystemStore,
    counter: AtomicU64,
}

impl AtomicFilesystemStore {
    /// Open (creating the folder if needed) a store rooted at `path`.
    pub fn new(path: &Path) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(path)?;
        let inner = FilesystemStore::new(path).map_err(std::io::Error::other)?;
        Ok(AtomicFilesystemStore {
            inner,
            counter: AtomicU64::new(0),
        })
    }

    /// `{key}.tmp.{pid}.{n}.{host}`: unique per process and write.
    fn temporary_key(&self, key: &StoreKey) -> StoreKey {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        StoreKey::new(temporary_name(key.as_str(), n)).expect("a valid key with a suffix is valid")
    }
}

/// `{key}.tmp.{pid}.{n}.{host}`: the name of this process's `n`-th temporary for `key`, shared
/// by the local and WebDAV stores so that readers and resume skip both alike.
pub(super) fn temporary_name(key: &str, n: u64) -> String {
    format!("{key}.tmp.{}.{n}.{}", std::process::id(), host_tag())
}

impl AtomicFilesystemStore {
    /// Write `value` to a new temporary, call `before_rename` with the temporary's key (for
    /// tests: what is on disk at that moment), then rename it over `key`. A failure at any step
    /// erases the temporary.
    fn set_via_temporary(
        &self,
        key: &StoreKey,
        value: Bytes,
        before_rename: impl FnOnce(&StoreKey),
    ) -> Result<(), StorageError> {
        let tmp = self.temporary_key(key);
        self.inner
            .set(&tmp, value)
            .and_then(|()| {
                before_rename(&tmp);
                self.inner.rename(&tmp, key)
            })
            .inspect_err(|_| {
                // A failed write (e.g. a full disk) leaves nothing behind.
                let _ = self.inner.erase(&tmp);
            })
    }
}

/// A short tag of this machine's host name (8 hex digits), part of temporary names so that a
/// build cleaning up after killed processes only judges processes of its own machine when
/// several machines share one folder.
pub fn host_tag() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    // FNV-1a: stable across runs and Rust versions.
    let hash = name.trim().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// True for the temporary keys [`AtomicFilesystemStore`] writes before renaming.
pub fn is_temporary_key(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.contains(".tmp."))
}

/// The process id and host tag in a temporary object name `name.tmp.{pid}.{n}[.{host}]`.
fn temporary_key_owner(name: &str) -> Option<(u32, Option<String>)> {
    let (_, rest) = name.rsplit_once(".tmp.")?;
    let mut parts = rest.split('.');
    let pid = parts.next()?.parse().ok()?;
    let host = parts.nth(1).map(str::to_string);
    Some((pid, host))
}

impl Store {
    /// Remove temporary objects under `prefix` left by killed writers: keys
    /// `*.tmp.{pid}.{n}.{host}` written on this machine by a process that no longer runs.
    /// Temporaries of other machines sharing the folder are left alone. Only local folders
    /// and WebDAV (http(s)://) stores write temporaries; on others this does nothing.
    pub fn remove_stale_temporaries(&self, prefix: &str) -> Result<usize, StoreError> {
        if !self.writes_temporaries() {
            return Ok(0);
        }
        let mut removed = 0;
        let this_host = host_tag();
        for key in self.list_prefix(prefix)? {
            let Some((pid, host)) = key.rsplit('/').next().and_then(temporary_key_owner) else {
                continue;
            };
            if host.is_some_and(|h| h != this_host) {
                continue;
            }
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            if !alive && Path::new("/proc/self").exists() {
                self.erase(&key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl ReadableStorageTraits for AtomicFilesystemStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for AtomicFilesystemStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.set_via_temporary(key, value, |_| ())
    }
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        zarrs::storage::store_set_partial_many(self, key, offset_values)
    }
    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }
    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }
    fn supports_set_partial(&self) -> bool {
        false
    }
}

impl ListableStorageTraits for AtomicFilesystemStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }
    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }
    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }
    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files in `dir` whose names mark them as temporaries.
    fn temporaries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| is_temporary_key(n))
            .collect()
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_behind() {
        let root = std::env::temp_dir().join(format!("mosaic-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = AtomicFilesystemStore::new(&root).unwrap();
        // The temporary is written, then the rename fails: a non-empty folder holds the key.
        std::fs::create_dir_all(root.join("band/shard/inside")).unwrap();
        let key = StoreKey::new("band/shard").unwrap();
        let mut seen = None;
        let err = store.set_via_temporary(&key, Bytes::from(vec![7u8; 4096]), |tmp| {
            // Just before the rename: the temporary holds the whole value, next to its key.
            seen = Some((
                temporaries(&root.join("band")),
                std::fs::read(root.join(tmp.as_str())).ok(),
            ));
        });
        assert!(err.is_err(), "the rename onto a folder must fail");
        let (before, bytes) = seen.expect("the temporary was written before the rename");
        assert_eq!(
            before.len(),
            1,
            "one temporary before the rename: {before:?}"
        );
        assert!(before[0].starts_with("shard.tmp."), "{before:?}");
        assert_eq!(bytes, Some(vec![7u8; 4096]));
        // After the failed rename it is gone.
        assert_eq!(temporaries(&root.join("band")), Vec::<String>::new());
        // A write that succeeds leaves the value and no temporary either.
        let ok = StoreKey::new("band/other").unwrap();
        store.set(&ok, Bytes::from(vec![1u8; 10])).unwrap();
        assert_eq!(
            std::fs::read(root.join("band/other")).unwrap(),
            vec![1u8; 10]
        );
        assert_eq!(temporaries(&root.join("band")), Vec::<String>::new());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn temporary_names_carry_their_owner() {
        assert_eq!(
            temporary_key_owner("0.tmp.4242.7.0a1b2c3d"),
            Some((4242, Some("0a1b2c3d".to_string())))
        );
        assert_eq!(temporary_key_owner("0.tmp.4242.7"), Some((4242, None)));
        assert_eq!(temporary_key_owner("0"), None);
        assert!(is_temporary_key("b/embeddings/c/0/1/2/0.tmp.1.2.ab"));
        assert!(!is_temporary_key("b/embeddings/c/0/1/2/0"));
    }
}
