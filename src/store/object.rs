//! Object storage (S3 and the other `object_store` schemes) behind zarrs' synchronous storage
//! traits, so the writer and the readers use it exactly like a local folder.
//!
//! Every write is one PUT of a whole object, which S3, GCS and Azure make atomic: no temporary
//! keys are needed there. A WebDAV server may write a PUT's body in place (WsgiDAV does), so
//! http(s):// writes go to a temporary key and are MOVEd onto the final one ([`WebDav`]). The
//! async object store is driven by one shared tokio runtime; rayon threads block on their own
//! requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use std::time::Duration;

use object_store::client::{HttpClient, HttpConnector, HttpRequest, HttpRequestBody};
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, HeaderValue, ObjectStore, ObjectStoreExt};
use zarrs::storage::storage_adapter::async_to_sync::{
    AsyncToSyncBlockOn, AsyncToSyncStorageAdapter,
};
use zarrs_object_store::AsyncObjectStore;

use super::handle::{Store, StoreError};
use super::local::temporary_name;

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

/// Settings of one location (input, landmasks or output): object_store configuration keys
/// (`aws_endpoint`, `aws_region`, `aws_skip_signature`, `aws_access_key_id`, `allow_http`,
/// `google_service_account`, `azure_storage_account_name`, ...) with their values. They
/// override what the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`) says, for this location only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions(pub Vec<(String, String)>);

impl StoreOptions {
    /// Parse `KEY=VALUE` (the key is case-insensitive: `AWS_ENDPOINT` = `aws_endpoint`).
    pub fn parse_pair(text: &str) -> Result<(String, String), String> {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected KEY=VALUE"))?;
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(format!("`{text}`: the key is empty"));
        }
        Ok((key, value.to_string()))
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Apply `options` to a builder, each key parsed as `K`: an unknown key is an error naming it.
fn apply_options<B, K: std::str::FromStr>(
    mut builder: B,
    options: &StoreOptions,
    scheme: &str,
    with: impl Fn(B, K, String) -> B,
) -> Result<B, String> {
    for (key, value) in &options.0 {
        let parsed = key.parse::<K>().map_err(|_| {
            format!(
                "unknown option `{key}` for {scheme}:// (see object_store's configuration keys)"
            )
        })?;
        builder = with(builder, parsed, value.clone());
    }
    Ok(builder)
}

/// The bucket-level object store of a URL and the object path of the URL within it, with
/// credentials and endpoint from the usual environment variables, overridden by `options`.
pub fn object_store_at(
    location: &str,
    limits: RequestLimits,
    options: &StoreOptions,
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
            let b = apply_options(b, options, url.scheme(), |b, k, v| b.with_config(k, v))
                .map_err(err)?;
            Arc::new(
                b.with_retry(retry)
                    .build()
                    .map_err(|source| StoreError::Client {
                        location: location.to_string(),
                        source,
                    })?,
            )
        }
        "gs" => {
            let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(location);
            for (k, v) in client_keys {
                b = b.with_config(object_store::gcp::GoogleConfigKey::Client(k), v);
            }
            let b = apply_options(b, options, url.scheme(), |b, k, v| b.with_config(k, v))
                .map_err(err)?;
            Arc::new(
                b.with_retry(retry)
                    .build()
                    .map_err(|source| StoreError::Client {
                        location: location.to_string(),
                        source,
                    })?,
            )
        }
        "az" | "azure" | "abfs" | "abfss" | "adl" => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(location);
            for (k, v) in client_keys {
                b = b.with_config(object_store::azure::AzureConfigKey::Client(k), v);
            }
            let b = apply_options(b, options, url.scheme(), |b, k, v| b.with_config(k, v))
                .map_err(err)?;
            Arc::new(
                b.with_retry(retry)
                    .build()
                    .map_err(|source| StoreError::Client {
                        location: location.to_string(),
                        source,
                    })?,
            )
        }
        "http" | "https" => {
            let base = format!("{}://{}", url.scheme(), url.authority());
            let mut client = object_store::ClientOptions::new().with_allow_http(true);
            for (k, v) in client_keys {
                client = client.with_config(k, v);
            }
            let client =
                apply_options(client, options, url.scheme(), |c, k, v| c.with_config(k, v))
                    .map_err(err)?;
            let client_err = |source| StoreError::Client {
                location: location.to_string(),
                source,
            };
            let mover = object_store::client::ReqwestConnector::default()
                .connect(&client)
                .map_err(client_err)?;
            let inner = object_store::http::HttpBuilder::new()
                .with_url(base.clone())
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .map_err(client_err)?;
            Arc::new(WebDav {
                inner: Arc::new(inner),
                client: mover,
                base: url::Url::parse(&base).map_err(|e| err(format!("not a URL: {e}")))?,
                counter: AtomicU64::new(0),
            })
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

/// Open `scheme://bucket/prefix` as a store, with `options` for this location.
pub fn open(location: &str, options: &StoreOptions) -> Result<Store, StoreError> {
    let limits = RequestLimits::default();
    let (bucket_store, prefix) = object_store_at(location, limits, options)?;
    let bucket_store: Arc<dyn ObjectStore> = Arc::new(Retrying {
        inner: bucket_store,
        attempts: limits.retries + 1,
    });
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

/// An object store whose requests are tried again, with backoff, after a failure in transit
/// (a reset connection, a 5xx the client gave up on). The client's own retries leave some
/// resets unretried ("error sending request", measured in the Slurm rehearsal), and one such
/// answer among the thousands of requests of a `stac` or `finalize` would fail it whole. Answers
/// (not found, already exists, precondition, permissions) are returned at once; only whole-object
/// PUTs that overwrite are repeated, and reads are repeated up to the headers only.
#[derive(Debug)]
struct Retrying {
    inner: Arc<dyn ObjectStore>,
    attempts: usize,
}

impl std::fmt::Display for Retrying {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Retrying({})", self.inner)
    }
}

/// The media type of a key by its suffix, sent with its PUT, so that a bucket serving a
/// written folder (the STAC catalogue and its map) gives browsers `text/html`, `image/png`,
/// ... as a web server would; keys without a known suffix (chunks) get the server's default.
fn content_type(key: &str) -> Option<&'static str> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (_, suffix) = name.rsplit_once('.')?;
    Some(match suffix {
        "html" => "text/html",
        "js" => "text/javascript",
        "css" => "text/css",
        "json" => "application/json",
        "png" => "image/png",
        "txt" => "text/plain",
        _ => return None,
    })
}

/// True for errors another attempt may not meet.
fn transient(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    matches!(e, E::Generic { .. } | E::JoinError { .. })
}

async fn again<T, F, Fut>(attempts: usize, mut request: F) -> object_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = object_store::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(e) if attempt < attempts && transient(&e) => {
                tracing::info!("attempt {attempt} of {attempts} failed, trying again: {e}");
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// `impl ObjectStore` for a wrapper (`Retrying`, `WebDav`) from the methods it changes; the
/// others pass to its `inner` store unchanged, written once here.
macro_rules! object_store_wrapper {
    ($wrapper:ty { $($changed:tt)* }) => {
        #[async_trait::async_trait]
        impl ObjectStore for $wrapper {
            $($changed)*

            async fn put_multipart_opts(
                &self,
                location: &object_store::path::Path,
                opts: object_store::PutMultipartOptions,
            ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
                self.inner.put_multipart_opts(location, opts).await
            }

            fn delete_stream(
                &self,
                locations: futures::stream::BoxStream<
                    'static,
                    object_store::Result<object_store::path::Path>,
                >,
            ) -> futures::stream::BoxStream<
                'static,
                object_store::Result<object_store::path::Path>,
            > {
                self.inner.delete_stream(locations)
            }

            fn list(
                &self,
                prefix: Option<&object_store::path::Path>,
            ) -> futures::stream::BoxStream<
                'static,
                object_store::Result<object_store::ObjectMeta>,
            > {
                self.inner.list(prefix)
            }

            fn list_with_offset(
                &self,
                prefix: Option<&object_store::path::Path>,
                offset: &object_store::path::Path,
            ) -> futures::stream::BoxStream<
                'static,
                object_store::Result<object_store::ObjectMeta>,
            > {
                self.inner.list_with_offset(prefix, offset)
            }

            async fn copy_opts(
                &self,
                from: &object_store::path::Path,
                to: &object_store::path::Path,
                options: object_store::CopyOptions,
            ) -> object_store::Result<()> {
                self.inner.copy_opts(from, to, options).await
            }
        }
    };
}

object_store_wrapper!(Retrying {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        mut opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        let typed = object_store::Attribute::ContentType;
        if opts.attributes.get(&typed).is_none()
            && let Some(mime) = content_type(location.as_ref())
        {
            opts.attributes.insert(typed, mime.into());
        }
        if !matches!(opts.mode, object_store::PutMode::Overwrite) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        again(self.attempts, || {
            self.inner.put_opts(location, payload.clone(), opts.clone())
        })
        .await
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        again(self.attempts, || {
            self.inner.get_opts(location, options.clone())
        })
        .await
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        again(self.attempts, || self.inner.list_with_delimiter(prefix)).await
    }
});

/// A WebDAV store whose whole-object PUTs are all-or-nothing: the body goes to a temporary key
/// beside the final one (`{key}.tmp.{pid}.{n}.{host}`, skipped by readers and resume, removed
/// by the next build when its writer is dead), then a server-side MOVE (a rename on a folder
/// server) puts it under the final key. A writer killed mid-PUT leaves at worst a temporary.
/// HttpStore has no MOVE (its rename is COPY + DELETE, which writes every object twice), hence
/// the request made here with a client of the same options.
#[derive(Debug)]
struct WebDav {
    inner: Arc<dyn ObjectStore>,
    client: HttpClient,
    /// `scheme://host[:port]`, as HttpStore joins paths to it.
    base: url::Url,
    counter: AtomicU64,
}

impl std::fmt::Display for WebDav {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebDav({})", self.inner)
    }
}

impl WebDav {
    /// The URL of an object, built as HttpStore builds it.
    fn url(&self, location: &object_store::path::Path) -> String {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .extend(location.parts());
        url.to_string()
    }

    /// MOVE `from` onto `to`, replacing it (`Overwrite: T`).
    async fn move_onto(
        &self,
        from: &object_store::path::Path,
        to: &object_store::path::Path,
    ) -> object_store::Result<()> {
        let (source, destination) = (self.url(from), self.url(to));
        let what = || format!("MOVE {source} to {destination}");
        let generic = |message: String| object_store::Error::Generic {
            store: "WebDAV",
            source: message.into(),
        };
        let mut request = HttpRequest::new(HttpRequestBody::empty());
        *request.method_mut() =
            object_store::signer::Method::from_bytes(b"MOVE").expect("a method");
        *request.uri_mut() = source
            .parse()
            .map_err(|e| generic(format!("{}: {e}", what())))?;
        let header =
            |v: &str| HeaderValue::from_str(v).map_err(|e| generic(format!("{}: {e}", what())));
        request
            .headers_mut()
            .insert("Destination", header(&destination)?);
        request.headers_mut().insert("Overwrite", header("T")?);
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| generic(format!("{}: {e}", what())))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!("{}: the server answered {status}", what());
        Err(match status.as_u16() {
            401 => object_store::Error::Unauthenticated {
                path: to.to_string(),
                source: message.into(),
            },
            403 => object_store::Error::PermissionDenied {
                path: to.to_string(),
                source: message.into(),
            },
            404 => object_store::Error::NotFound {
                path: from.to_string(),
                source: message.into(),
            },
            // 5xx may pass: the caller's retries see a transient error.
            500.. => generic(message),
            _ => object_store::Error::NotSupported {
                source: message.into(),
            },
        })
    }
}

object_store_wrapper!(WebDav {
    async fn put_opts(
        &self,
        location: &object_store::path::Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        if !matches!(opts.mode, object_store::PutMode::Overwrite) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let temporary = object_store::path::Path::from(temporary_name(location.as_ref(), n));
        let moved = match self.inner.put_opts(&temporary, payload, opts).await {
            Ok(_) => self.move_onto(&temporary, location).await,
            Err(e) => Err(e),
        };
        if let Err(e) = moved {
            // Leave nothing behind (a killed writer's temporary is removed by the next build).
            let _ = self.inner.delete(&temporary).await;
            return Err(e);
        }
        // The temporary's ETag would not be the final object's: none is reported.
        Ok(object_store::PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })
    }

    async fn get_opts(
        &self,
        location: &object_store::path::Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&object_store::path::Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
});
