//! The zone store's bounded cache of decoded inner chunks (src/input/zones.rs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Which array of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Embeddings,
    Scales,
    Counts,
}

/// A decoded inner chunk: (group id, array, time, chunk row, chunk column).
pub(super) type ChunkKey = (u16, Kind, u64, u64, u64);
type Decoded = Arc<OnceLock<Result<Arc<Vec<u8>>, String>>>;

/// A bounded cache of decoded inner chunks, least recently used first out: neighbouring cells'
/// windows share the chunks along their edges, so each is fetched and decoded once while its
/// neighbours are read. A chunk asked for by two threads at once is fetched once (the second
/// waits).
pub(super) struct ChunkCache {
    budget: usize,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Each chunk: its value (once fetched), its size, and when it was last used.
    map: HashMap<ChunkKey, (Decoded, usize, u64)>,
    bytes: usize,
    tick: u64,
}

impl ChunkCache {
    /// A cache of up to `budget` bytes of decoded chunks.
    pub(super) fn new(budget: usize) -> ChunkCache {
        ChunkCache {
            budget,
            state: Mutex::default(),
        }
    }

    pub(super) fn get(
        &self,
        key: ChunkKey,
        fetch: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Arc<Vec<u8>>, String> {
        let slot = {
            let mut s = self.state.lock().expect("no poisoning");
            s.tick += 1;
            let tick = s.tick;
            let e = s
                .map
                .entry(key)
                .or_insert_with(|| (Arc::default(), 0, tick));
            e.2 = tick;
            e.0.clone()
        };
        let value = slot.get_or_init(|| fetch().map(Arc::new)).clone();
        let mut s = self.state.lock().expect("no poisoning");
        match &value {
            Ok(v) => {
                if let Some(e) = s.map.get_mut(&key).filter(|e| e.1 == 0) {
                    e.1 = v.len();
                    s.bytes += v.len();
                }
                while s.bytes > self.budget && s.map.len() > 1 {
                    let oldest = s
                        .map
                        .iter()
                        .filter(|(k, e)| e.1 > 0 && **k != key)
                        .min_by_key(|(_, e)| e.2)
                        .map(|(k, _)| *k);
                    let Some(oldest) = oldest else { break };
                    let (_, size, _) = s.map.remove(&oldest).expect("present");
                    s.bytes -= size;
                }
            }
            Err(_) => {
                s.map.remove(&key);
            }
        }
        value
    }
}
