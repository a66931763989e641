//! Object storage (S3 and the other `object_store` schemes) behind zarrs' synchronous storage
//! traits, so the writer and the readers use it exactly like a local folder.
//!
//! Every write is one PUT of a whole object, which object stores make atomic: no temporary keys
//! are needed. The async object store is driven by one shared tokio runtime; rayon threads block
//! on their own requests.

use std::sync::{Arc, OnceLock};

use std::time::Duration;

use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ObjectStore};
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

/// How long one request may take and how often it is retried: nothing waits forever on a
/// server that accepts a connection and never answers.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Deadline of one request (connection, headers and body).
    pub timeout: Duration,
    /// Retries after a failed or timed-out request (with exponential backoff).
    pub retries: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            timeout: Duration::from_secs(300),
            retries: 3,
        }
    }
}

/// The bucket-level object store of a URL and the object path of the URL within it, with
/// credentials and endpoint from the usual environment variables.
pub fn object_store_at(
    location: &str,
    limits: RequestLimits,
) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path), StoreError> {
    let err = |m: String| StoreError::Open {
        location: location.to_string(),
        message: m,
    };
    let url = url::Url::parse(location).map_err(|e| err(format!("not a URL: {e}")))?;
    // Deadlines are set key by key, so that the options read from the environment (such as
    // AWS_ALLOW_HTTP) stay as they are.
    let timeout = format!("{}ms", limits.timeout.as_millis());
    let connect = format!(
        "{}ms",
        limits.timeout.min(Duration::from_secs(30)).as_millis()
    );
    let client_keys = [
        (ClientConfigKey::Timeout, timeout),
        (ClientConfigKey::ConnectTimeout, connect),
    ];
    let retry = object_store::RetryConfig {
        max_retries: limits.retries,
        retry_timeout: limits.timeout * (limits.retries as u32 + 1),
        ..Default::default()
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(location);
            for (k, v) in client_keys {
                b = b.with_config(object_store::aws::AmazonS3ConfigKey::Client(k), v);
            }
            Arc::new(
                b.with_retry(retry)
                    .build()
                    .map_err(|e| err(e.to_string()))?,
            )
        }
        "gs" => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(location);
            for (k, v) in client_keys {
                b = b.with_config(object_store::gcp::GoogleConfigKey::Client(k), v);
            }
            Arc::new(
                b.with_retry(retry)
                    .build()
                    .map_err(|e| err(e.to_string()))?,
            )
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(location);
            for (k, v) in client_keys {
                b = b.with_config(object_store::azure::AzureConfigKey::Client(k), v);
            }
            Arc::new(
                b.with_retry(retry)
                    .build()
                    .map_err(|e| err(e.to_string()))?,
            )
        }
        "http" | "https" => {
            let base = format!("{}://{}", url.scheme(), url.authority());
            let mut client = object_store::ClientOptions::new().with_allow_http(true);
            for (k, v) in client_keys {
                client = client.with_config(k, v);
            }
            Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(base)
                    .with_client_options(client)
                    .with_retry(retry)
                    .build()
                    .map_err(|e| err(e.to_string()))?,
            )
        }
        other => {
            return Err(err(format!(
                "unsupported scheme `{other}` (use a path, s3://, gs://, az:// or http(s)://)"
            )));
        }
    };
    let path = object_store::path::Path::from(url.path().trim_matches('/'));
    Ok((store, path))
}

/// Run a future to completion on the shared runtime, from synchronous code.
pub fn block_on<F: core::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Spawn a future on the shared runtime.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: core::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime().spawn(future)
}

/// Open `scheme://bucket/prefix` as a store.
pub fn open(location: &str) -> Result<Store, StoreError> {
    let (bucket_store, prefix) = object_store_at(location, RequestLimits::default())?;
    let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
        bucket_store
    } else {
        Arc::new(PrefixStore::new(bucket_store, prefix))
    };
    let async_store = Arc::new(AsyncObjectStore::new(store));
    let sync =
        AsyncToSyncStorageAdapter::new(async_store, TokioBlockOn(runtime().handle().clone()));
    Ok(Store {
        storage: Arc::new(sync),
        location: location.trim_end_matches('/').to_string(),
    })
}
