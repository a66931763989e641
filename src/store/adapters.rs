//! Storage adapters that change how reads or writes travel, knowing nothing of what the bytes
//! are: counting reads (zarrs' performance-metrics adapter) and writing in the background.

use std::sync::{Arc, Mutex, mpsc};

use zarrs::storage::storage_adapter::performance_metrics::PerformanceMetricsStorageAdapter;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits,
    ReadableWritableListableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes,
    StorePrefix, WritableStorageTraits, byte_range::ByteRangeIterator,
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

/// Which writes go to the background threads (the caller decides, by key).
type InBackground = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// A storage adapter that hands the writes of chosen keys (large objects) to background
/// threads, so that compression on the worker threads overlaps with the disk (or network) and
/// its fsyncs. Other writes (small documents) pass through synchronously.
///
/// At most `capacity` objects wait in the queue (bounded memory); [`BackgroundWrites::finish`]
/// waits for every queued write and returns the ones that failed. An object that was queued but
/// never written (the process was killed) is simply absent.
pub struct BackgroundWrites {
    inner: Storage,
    in_background: InBackground,
    queue: Mutex<Option<mpsc::SyncSender<(StoreKey, Bytes)>>>,
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
        let bg = Arc::new(BackgroundWrites {
            inner: store.storage.clone(),
            in_background: Box::new(in_background),
            queue: Mutex::new(Some(tx)),
            writers: Mutex::new(handles),
            errors,
        });
        (
            Store {
                storage: bg.clone(),
                location: store.location.clone(),
            },
            bg,
        )
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

impl ReadableStorageTraits for BackgroundWrites {
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

impl WritableStorageTraits for BackgroundWrites {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        if !(self.in_background)(key.as_str()) {
            return self.inner.set(key, value);
        }
        let sender = self.queue.lock().expect("no poisoning").clone();
        match sender {
            Some(tx) => tx
                .send((key.clone(), value))
                .map_err(|_| StorageError::Other("the background writers stopped".into())),
            None => self.inner.set(key, value),
        }
    }
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.inner.set_partial_many(key, offset_values)
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

impl ListableStorageTraits for BackgroundWrites {
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
