//! Object storage (S3 and the other `object_store` schemes) behind zarrs' synchronous storage
//! traits, so the writer and the readers use it exactly like a local folder.
//!
//! Every write is one PUT of a whole object, which object stores make atomic: no temporary keys
//! are needed. The async object store is driven by one shared tokio runtime; rayon threads block
//! on their own requests.

use std::sync::{Arc, OnceLock};

use object_store::ObjectStore;
use object_store::prefix::PrefixStore;
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_object_store::AsyncObjectStore;

use super::handle::{Store, StoreError};

/// Blocks on futures with the shared runtime.
struct TokioBlockOn(tokio::runtime::Handle);

impl AsyncToSyncBlockOn for TokioBlockOn {
    fn block_on<F: core::future::Future>(&self, future: F) -> F::Output {
        self.0.block_on(future)
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("mosaic-io")
            .build()
            .expect("a tokio runtime")
    })
}

/// Open `scheme://bucket/prefix` as a store.
pub fn open(location: &str) -> Result<Store, StoreError> {
    let err = |m: String| StoreError::Open {
        location: location.to_string(),
        message: m,
    };
    let url = url::Url::parse(location).map_err(|e| err(format!("not a URL: {e}")))?;
    let bucket_store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(location)
                .build()
                .map_err(|e| err(e.to_string()))?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(location)
                .build()
                .map_err(|e| err(e.to_string()))?,
        ),
        "az" | "azure" | "abfs" | "abfss" | "adl" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(location)
                .build()
                .map_err(|e| err(e.to_string()))?,
        ),
        "http" | "https" => Arc::new(
            object_store::http::HttpBuilder::new()
                .with_url(location)
                .build()
                .map_err(|e| err(e.to_string()))?,
        ),
        other => {
            return Err(err(format!(
                "unsupported scheme `{other}` (use a path, s3://, gs://, az:// or http(s)://)"
            )));
        }
    };
    let prefix = if matches!(url.scheme(), "http" | "https") {
        String::new()
    } else {
        url.path().trim_matches('/').to_string()
    };
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        bucket_store
    } else {
        Arc::new(PrefixStore::new(bucket_store, prefix.as_str()))
    };
    let async_store = Arc::new(AsyncObjectStore::new(store));
    let sync =
        AsyncToSyncStorageAdapter::new(async_store, TokioBlockOn(runtime().handle().clone()));
    Ok(Store {
        storage: Arc::new(sync),
        location: location.trim_end_matches('/').to_string(),
    })
}
