//! [`Store`]: an opened store (local folder or object store URL) and its whole-object reads
//! and writes of JSON documents and keys.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use zarrs::storage::{
    Bytes, ReadableWritableListableStorageTraits, StorageError, StoreKey, StorePrefix,
};

use super::local::AtomicFilesystemStore;
use super::object::StoreOptions;

/// A store handle usable from many threads.
pub type Storage = Arc<dyn ReadableWritableListableStorageTraits>;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {location}")]
    Storage {
        location: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot open store {location}: {message}")]
    Open { location: String, message: String },
    #[error("cannot open store {location}")]
    Client {
        location: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot open store {location}")]
    Folder {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store {location}: `{key}` is not a store key")]
    Key {
        location: String,
        key: String,
        #[source]
        source: zarrs::storage::StoreKeyError,
    },
    #[error("store {location}: {key} is not valid JSON")]
    Json {
        location: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An opened store.
#[derive(Clone)]
pub struct Store {
    /// The storage behind it.
    pub storage: Storage,
    /// Where it is (path or URL), for messages.
    pub location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// True for a location that is a URL other than `file://`.
pub fn is_url(location: &str) -> bool {
    location.contains("://") && !location.starts_with("file://")
}

fn storage_err(location: &str) -> impl Fn(StorageError) -> StoreError + '_ {
    move |source| StoreError::Storage {
        location: location.to_string(),
        source,
    }
}

impl Store {
    /// Open a local store, creating its folder if needed.
    pub fn open_local(path: &Path) -> Result<Store, StoreError> {
        let location = path.display().to_string();
        let fs = AtomicFilesystemStore::new(path).map_err(|source| StoreError::Folder {
            location: location.clone(),
            source,
        })?;
        Ok(Store {
            storage: Arc::new(fs),
            location,
        })
    }

    /// Open a store from a local path or an object store URL (`s3://bucket/prefix`,
    /// `gs://...`, `az://...`, `http(s)://...`); credentials and endpoint come from the usual
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`, ...).
    pub fn open(location: &str) -> Result<Store, StoreError> {
        Store::open_with(location, &StoreOptions::default())
    }

    /// [`Store::open`] with settings for this location (object stores only; a local path
    /// takes none).
    pub fn open_with(location: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        if is_url(location) {
            super::object::open(location, options)
        } else if !options.is_empty() {
            Err(StoreError::Open {
                location: location.to_string(),
                message: "store options apply to object store URLs only, not to a local folder"
                    .into(),
            })
        } else {
            Store::open_local(&PathBuf::from(location.trim_start_matches("file://")))
        }
    }

    /// Open a store that must already exist, as witnessed by the object `marker` (for readers:
    /// a clear error instead of an empty folder created by mistake).
    pub fn open_existing(location: &str, marker: &str) -> Result<Store, StoreError> {
        let missing = || StoreError::Open {
            location: location.to_string(),
            message: format!("no Zarr store here ({marker} missing)"),
        };
        if !is_url(location) {
            let path = Path::new(location.trim_start_matches("file://"));
            if !path.join(marker).exists() {
                return Err(missing());
            }
        }
        let store = Store::open(location)?;
        if !store.exists(marker)? {
            return Err(missing());
        }
        Ok(store)
    }

    /// True for local folders.
    pub fn is_local(&self) -> bool {
        !is_url(&self.location)
    }

    /// True for stores that write through temporary objects renamed into place: local folders
    /// and WebDAV (http(s)://), whose servers may write a PUT's body in place.
    pub fn writes_temporaries(&self) -> bool {
        let location = self.location.to_ascii_lowercase();
        self.is_local() || location.starts_with("http://") || location.starts_with("https://")
    }

    /// Read a JSON document, `None` when absent.
    pub fn get_json(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = StoreKey::new(key).map_err(|source| StoreError::Key {
            location: self.location.clone(),
            key: key.to_string(),
            source,
        })?;
        match self
            .storage
            .get(&key)
            .map_err(storage_err(&self.location))?
        {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::Json {
                        location: self.location.clone(),
                        key: key.to_string(),
                        source,
                    })
            }
        }
    }

    /// Read an object's bytes, `None` when absent.
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let key = StoreKey::new(key).map_err(|source| StoreError::Key {
            location: self.location.clone(),
            key: key.to_string(),
            source,
        })?;
        self.storage.get(&key).map_err(storage_err(&self.location))
    }

    /// Write an object.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let key = StoreKey::new(key).map_err(|source| StoreError::Key {
            location: self.location.clone(),
            key: key.to_string(),
            source,
        })?;
        self.storage
            .set(&key, Bytes::from(bytes))
            .map_err(storage_err(&self.location))
    }

    /// Write a JSON document (pretty, deterministic).
    pub fn put_json(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        let key = StoreKey::new(key).expect("valid key");
        let mut text = serde_json::to_vec_pretty(value).expect("JSON serialises");
        text.push(b'\n');
        self.storage
            .set(&key, Bytes::from(text))
            .map_err(storage_err(&self.location))
    }

    /// Delete an object (no error when absent).
    pub fn erase(&self, key: &str) -> Result<(), StoreError> {
        let key = StoreKey::new(key).expect("valid key");
        self.storage
            .erase(&key)
            .map_err(storage_err(&self.location))
    }

    /// True when an object exists.
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let key = StoreKey::new(key).expect("valid key");
        Ok(self
            .storage
            .size_key(&key)
            .map_err(storage_err(&self.location))?
            .is_some())
    }

    /// All keys under a prefix (ending in `/`).
    pub fn list_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = StorePrefix::new(prefix).expect("valid prefix");
        Ok(self
            .storage
            .list_prefix(&prefix)
            .map_err(storage_err(&self.location))?
            .into_iter()
            .map(|k| k.as_str().to_string())
            .collect())
    }

    /// The names of the "folders" directly under the root (prefixes without the `/`).
    pub fn top_level_prefixes(&self) -> Result<Vec<String>, StoreError> {
        let listing = self
            .storage
            .list_dir(&StorePrefix::root())
            .map_err(storage_err(&self.location))?;
        Ok(listing
            .prefixes()
            .iter()
            .map(|p| p.as_str().trim_end_matches('/').to_string())
            .collect())
    }
}
