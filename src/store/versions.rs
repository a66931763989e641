//! Object versions: every object under a prefix with its size and a tag that changes when its
//! bytes do (an object store's ETag, a local file's modification time), from one listing. What
//! a step that redoes only what changed (the map's tiles) compares between runs, without
//! reading the objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::prefix::PrefixStore;

use super::handle::{Store, StoreError, is_url};
use super::local::is_temporary_key;
use super::object::{RequestLimits, StoreOptions, block_on, object_store_at};

/// One version of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    /// Bytes.
    pub size: u64,
    /// The store's tag of its content: the ETag (S3: the MD5 of a single PUT's bytes), else
    /// the modification time.
    pub tag: String,
}

/// Lists objects with their versions, for one store.
pub enum VersionLister {
    /// A local folder: sizes and modification times (nanoseconds).
    Folder(PathBuf),
    /// An object store (rooted at the store's prefix).
    Objects(Arc<dyn ObjectStore>),
}

impl Store {
    /// A lister of this store's object versions, reached through its location (so adapters
    /// around the storage are bypassed: the versions are the backend's). `None` for a store
    /// that has no location to list (in memory).
    pub fn version_lister(&self) -> Result<Option<VersionLister>, StoreError> {
        if is_url(&self.location) {
            let (bucket, prefix) = object_store_at(
                &self.location,
                RequestLimits::default(),
                &StoreOptions::default(),
            )?;
            let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
                bucket
            } else {
                Arc::new(PrefixStore::new(bucket, prefix))
            };
            return Ok(Some(VersionLister::Objects(store)));
        }
        let path = PathBuf::from(self.location.trim_start_matches("file://"));
        Ok(path.is_dir().then_some(VersionLister::Folder(path)))
    }
}

impl VersionLister {
    /// Every object under `prefix` (ending in `/`) with its version, by key (temporaries of
    /// local writers left out). A listing that fails in transit is tried again from the start
    /// (4 attempts), as reads of an opened store are.
    pub fn list(
        &self,
        location: &str,
        prefix: &str,
    ) -> Result<BTreeMap<String, ObjectVersion>, StoreError> {
        match self {
            VersionLister::Folder(root) => {
                let mut out = BTreeMap::new();
                walk(root, &root.join(prefix), &mut out).map_err(|source| StoreError::Folder {
                    location: format!("{location}/{prefix}"),
                    source,
                })?;
                Ok(out)
            }
            VersionLister::Objects(store) => {
                let path = object_store::path::Path::from(prefix.trim_end_matches('/'));
                let mut attempt = 1;
                loop {
                    let listed: Result<Vec<object_store::ObjectMeta>, _> =
                        block_on(store.list(Some(&path)).try_collect());
                    match listed {
                        Ok(metas) => {
                            return Ok(metas
                                .into_iter()
                                .map(|m| {
                                    let tag = m.e_tag.clone().unwrap_or_else(|| {
                                        m.last_modified
                                            .timestamp_nanos_opt()
                                            .unwrap_or(0)
                                            .to_string()
                                    });
                                    (m.location.to_string(), ObjectVersion { size: m.size, tag })
                                })
                                .collect());
                        }
                        Err(object_store::Error::Generic { .. }) if attempt < 4 => {
                            std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
                            attempt += 1;
                        }
                        Err(source) => {
                            return Err(StoreError::Client {
                                location: format!("{location}/{prefix}"),
                                source,
                            });
                        }
                    }
                }
            }
        }
    }
}

/// Files under `dir` (none when it does not exist), keyed relative to `root` with `/`.
fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, ObjectVersion>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        let key = path
            .strip_prefix(root)
            .expect("under the root")
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if is_temporary_key(&key) {
            continue;
        }
        let mtime = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        out.insert(
            key,
            ObjectVersion {
                size: meta.len(),
                tag: mtime.to_string(),
            },
        );
    }
    Ok(())
}
