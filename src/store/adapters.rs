//! Storage adapters that change how reads or writes travel, knowing nothing of what the bytes
//! are: counting reads (zarrs' performance-metrics adapter), writing in the background, and
//! handing reads and writes to hooks (fault injection, watching what a tool reads).

use std::sync::{Arc, Mutex, mpsc};

use zarrs::storage::storage_adapter::performance_metrics::PerformanceMetricsStorageAdapter;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits,
    ReadableWritableListableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes,
    StorePrefix, WritableStorageTraits,
    byte_range::{ByteRange, ByteRangeIterator},
};

use super::handle::{Storage, Store};

/// Read counts of a store wrapped by [`count_reads`]: `bytes_read()` and `reads()`.
pub type ReadMetrics = PerformanceMetricsStorageAdapter<dyn ReadableWritableListableStorageTraits>;

/// Wrap a store so that the bytes and requests read through the returned store are counted.
pub fn count_reads(store: &Store) -> (Store, Arc<ReadMetrics>) {
    let metrics = Arc::new(PerformanceMetricsStorageAdapter::new(store.storage.clone()));
    (
        Store {
            storage: metrics.clone(),
            location: store.location.clone(),
        },
        metrics,
    )
}

/// The queue of writes waiting for a background writer; `None` once it is closed.
type WriteQueue = mpsc::SyncSender<(StoreKey, Bytes)>;

/// Background writers: the writes of chosen keys (large objects) go to background threads,
/// so that compression on the worker threads overlaps with the disk (or network) and its
/// fsyncs. Other writes (small documents) pass through synchronously. It is an [`Intercept`]
/// whose write hook queues.
///
/// At most `capacity` objects wait in the queue (bounded memory); [`BackgroundWrites::finish`]
/// waits for every queued write and returns the ones that failed. An object that was queued but
/// never written (the process was killed) is simply absent.
pub struct BackgroundWrites {
    queue: Arc<Mutex<Option<WriteQueue>>>,
    writers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    errors: Arc<Mutex<Vec<(String, String)>>>,
}

impl BackgroundWrites {
    /// Wrap a store: writes of keys for which `in_background` is true go through `writers`
    /// threads with `capacity` queued objects.
    pub fn wrap(
        store: &Store,
        writers: usize,
        capacity: usize,
        in_background: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> (Store, Arc<BackgroundWrites>) {
        let (tx, rx) = mpsc::sync_channel::<(StoreKey, Bytes)>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..writers.max(1))
            .map(|i| {
                let (rx, errors, inner) = (rx.clone(), errors.clone(), store.storage.clone());
                std::thread::Builder::new()
                    .name(format!("mosaic-writer-{i}"))
                    .spawn(move || {
                        loop {
                            let job = rx.lock().expect("no poisoning").recv();
                            let Ok((key, value)) = job else { break };
                            if let Err(e) = inner.set(&key, value) {
                                errors
                                    .lock()
                                    .expect("no poisoning")
                                    .push((key.as_str().to_string(), e.to_string()));
                            }
                        }
                    })
                    .expect("a writer thread")
            })
            .collect();
        let queue = Arc::new(Mutex::new(Some(tx)));
        let sender = queue.clone();
        let writing = Intercept::new(store)
            .on_write(move |key, value, inner| {
                if !in_background(key.as_str()) {
                    return inner.set(key, value);
                }
                let tx = sender.lock().expect("no poisoning").clone();
                match tx {
                    Some(tx) => tx
                        .send((key.clone(), value))
                        .map_err(|_| StorageError::Other("the background writers stopped".into())),
                    None => inner.set(key, value),
                }
            })
            .into_store(&store.location);
        let bg = Arc::new(BackgroundWrites {
            queue,
            writers: Mutex::new(handles),
            errors,
        });
        (writing, bg)
    }

    /// Wait for every queued write; return the keys that failed, with the error.
    pub fn finish(&self) -> Vec<(String, String)> {
        drop(self.queue.lock().expect("no poisoning").take());
        for h in self.writers.lock().expect("no poisoning").drain(..) {
            let _ = h.join();
        }
        std::mem::take(&mut *self.errors.lock().expect("no poisoning"))
    }
}

/// What an [`Intercept`] does with a write: given the key, the value and the store behind it.
pub type WriteHook =
    Box<dyn Fn(&StoreKey, Bytes, &Storage) -> Result<(), StorageError> + Send + Sync>;

/// What an [`Intercept`] is told of a read, before it is forwarded: the key and the ranges.
pub type ReadHook = Box<dyn Fn(&StoreKey, &[ByteRange]) + Send + Sync>;

/// A storage adapter that hands every write and every read to hooks and forwards everything
/// else: a full disk, a writer racing this one, or a log of the bytes a tool reads, in a few
/// lines instead of a storage implementation.
pub struct Intercept {
    inner: Storage,
    on_write: Option<WriteHook>,
    on_read: Option<ReadHook>,
}

impl Intercept {
    /// Forward everything to `store` until hooks are added.
    pub fn new(store: &Store) -> Intercept {
        Intercept {
            inner: store.storage.clone(),
            on_write: None,
            on_read: None,
        }
    }

    /// Writes go to `hook`, which decides whether (and how) to pass them on.
    pub fn on_write(
        mut self,
        hook: impl Fn(&StoreKey, Bytes, &Storage) -> Result<(), StorageError> + Send + Sync + 'static,
    ) -> Intercept {
        self.on_write = Some(Box::new(hook));
        self
    }

    /// `hook` sees every read before it is forwarded.
    pub fn on_read(
        mut self,
        hook: impl Fn(&StoreKey, &[ByteRange]) + Send + Sync + 'static,
    ) -> Intercept {
        self.on_read = Some(Box::new(hook));
        self
    }

    /// A store that goes through the hooks.
    pub fn into_store(self, location: &str) -> Store {
        Store {
            storage: Arc::new(self),
            location: location.to_string(),
        }
    }
}

impl ReadableStorageTraits for Intercept {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let Some(hook) = &self.on_read else {
            return self.inner.get_partial_many(key, byte_ranges);
        };
        let ranges: Vec<ByteRange> = byte_ranges.collect();
        hook(key, &ranges);
        self.inner
            .get_partial_many(key, Box::new(ranges.into_iter()))
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for Intercept {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        match &self.on_write {
            Some(hook) => hook(key, value, &self.inner),
            None => self.inner.set(key, value),
        }
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

impl ListableStorageTraits for Intercept {
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
