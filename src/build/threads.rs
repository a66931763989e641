//! What each build thread keeps: the rayon pool, and tile-sized buffers reused from tile to
//! tile (fresh 50-160 MB allocations per tile cost a page fault per 4 KiB page, about a tenth
//! of the build time).

use super::band::BuildError;

/// The number of worker threads (`0`: all cores) and a rayon pool of that size.
pub(crate) fn thread_pool(threads: usize) -> Result<(usize, rayon::ThreadPool), BuildError> {
    let threads = if threads == 0 {
        rayon::current_num_threads()
    } else {
        threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| BuildError::Threads { threads, source })?;
    Ok((threads, pool))
}

/// Buffers of tile size that a thread reuses.
#[derive(Default)]
pub(crate) struct TileBuffers {
    /// The tile's embeddings as read.
    pub(crate) input: Vec<u8>,
    /// The gathered embeddings shard.
    pub(crate) output: Vec<u8>,
}

thread_local! {
    static TILE_BUFFERS: std::cell::Cell<TileBuffers> = std::cell::Cell::default();
}

/// Run `f` with this thread's tile buffers. They are taken out while `f` runs, so a task that
/// rayon nests on the same thread gets fresh buffers instead of a conflict.
pub(crate) fn with_tile_buffers<T>(f: impl FnOnce(&mut TileBuffers) -> T) -> T {
    let mut buffers = TILE_BUFFERS.take();
    let result = f(&mut buffers);
    TILE_BUFFERS.set(buffers);
    result
}
