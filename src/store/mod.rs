//! Where bytes go: a local folder or an object store, behind zarrs' storage traits.
//!
//! This module knows keys and bytes only, nothing of arrays, bands or tiles, and imports
//! nothing else from the crate. Every write is a whole object.

mod adapters;
mod handle;
mod local;
mod object;
mod versions;

pub use adapters::{BackgroundWrites, Intercept, ReadHook, ReadMetrics, WriteHook, count_reads};
pub use handle::{Storage, Store, StoreError, is_url};
pub use local::{AtomicFilesystemStore, host_tag, is_temporary_key};
pub use object::{RequestLimits, StoreOptions, block_on, object_store_at, spawn};
pub use versions::{ObjectVersion, VersionLister};
