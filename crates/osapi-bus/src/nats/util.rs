//! Helpers of the NATS backend: JSON values, error mapping, key listing,
//! version comparison.

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{BusError, BusResult};

/// Maps a client error to a bus error.
pub(crate) fn backend(what: &str, e: impl std::fmt::Display) -> BusError {
    crate::count_error();
    let text = e.to_string();
    if text.contains("timed out") || text.contains("not connected") || text.contains("disconnected")
    {
        BusError::Unavailable(format!("{what}: {text}"))
    } else {
        BusError::Backend(format!("{what}: {text}"))
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> BusResult<Bytes> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| BusError::Corrupt(format!("cannot encode: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> BusResult<T> {
    serde_json::from_slice(bytes).map_err(|e| BusError::Corrupt(format!("{what}: {e}")))
}

/// Reads and decodes one key.
pub(crate) async fn get_json<T: DeserializeOwned>(
    store: &kv::Store,
    key: &str,
) -> BusResult<Option<T>> {
    match store
        .get(key)
        .await
        .map_err(|e| backend(&format!("get {key}"), e))?
    {
        Some(bytes) if !bytes.is_empty() => decode(key, &bytes).map(Some),
        _ => Ok(None),
    }
}

/// Every key with a prefix (deleted keys may be included: their values
/// read as missing). Read from the stream's subject counts, one request per
/// page, without creating a consumer: a listing per request must not leave
/// consumers behind on the server (they outlive the request by their
/// inactivity threshold, and a burst of them exhausts the server's limit).
pub(crate) async fn keys_with_prefix(store: &kv::Store, prefix: &str) -> BusResult<Vec<String>> {
    let filter = format!("{}{prefix}>", store.prefix);
    let subjects = store
        .stream
        .info_with_subjects(&filter)
        .await
        .map_err(|e| backend("list keys", e))?;
    let subjects: Vec<(String, usize)> = subjects
        .try_collect()
        .await
        .map_err(|e| backend("list keys", e))?;
    let mut keys: Vec<String> = subjects
        .into_iter()
        .filter_map(|(subject, _)| subject.strip_prefix(&store.prefix).map(str::to_string))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Every live key of a bucket with its value, read in one pass through the
/// bucket's stream (an ordered consumer) instead of one request per key.
/// Deleted keys are left out.
pub(crate) async fn scan(store: &kv::Store) -> BusResult<Vec<(String, Bytes)>> {
    scan_map(store, |key, value| Some((key, value))).await
}

/// Like [`scan`], turning each entry into what `f` keeps as it arrives, so
/// that large values need not all be held at once. Reads through an
/// ephemeral pull consumer that is deleted when the scan ends.
pub(crate) async fn scan_map<T>(
    store: &kv::Store,
    mut f: impl FnMut(String, Bytes) -> Option<T>,
) -> BusResult<Vec<T>> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    let consumer = store
        .stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::LastPerSubject,
            filter_subject: format!("{}>", store.prefix),
            ack_policy: AckPolicy::None,
            inactive_threshold: SCAN_STALL,
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(|e| backend("scan bucket", e))?;
    let name = consumer.cached_info().name.clone();
    let pending = consumer.cached_info().num_pending;
    let scanned = async {
        let mut out = Vec::new();
        if pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(512)
            .messages()
            .await
            .map_err(|e| backend("scan bucket", e))?;
        loop {
            let next = tokio::time::timeout(SCAN_STALL, messages.next())
                .await
                .map_err(|_| BusError::Unavailable("scan bucket: no progress for 10s".into()))?;
            let Some(m) = next else { break };
            let m = m.map_err(|e| backend("scan bucket", e))?;
            let left = m.info().map(|i| i.pending).unwrap_or(0);
            // Deleted and purged keys carry a KV-Operation header.
            let put = m
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_none();
            if put && let Some(key) = m.subject.strip_prefix(store.prefix.as_str()) {
                out.extend(f(key.to_string(), m.payload.clone()));
            }
            if left == 0 {
                break;
            }
        }
        Ok(out)
    }
    .await;
    // Gone at once rather than after its inactivity threshold.
    let _ = store.stream.delete_consumer(&name).await;
    scanned
}

/// Longest wait for the next entry of a scan.
const SCAN_STALL: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads many keys concurrently, in key order; missing or undecodable values
/// are left out.
pub(crate) async fn get_many<T: DeserializeOwned>(
    store: &kv::Store,
    keys: Vec<String>,
) -> BusResult<Vec<T>> {
    let results: Vec<BusResult<Option<T>>> = futures::stream::iter(keys)
        .map(|k| async move { get_json::<T>(store, &k).await })
        .buffered(32)
        .collect()
        .await;
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(Some(v)) => out.push(v),
            Ok(None) | Err(BusError::Corrupt(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// True when `version` (`2.15.1`, `v2.10.0-beta`) is at least `min`.
///
/// ```
/// use osapi_bus::nats::version_at_least;
/// assert!(version_at_least("2.15.1", (2, 10, 0)));
/// assert!(!version_at_least("2.9.10", (2, 10, 0)));
/// assert!(version_at_least("v2.10.0", (2, 10, 0)));
/// ```
pub fn version_at_least(version: &str, min: (u64, u64, u64)) -> bool {
    let v = version.trim_start_matches('v');
    let mut parts = v
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let got = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    got >= min
}

/// How a [`Lazy`] handle is opened.
type Opener<T> =
    Box<dyn Fn() -> futures::future::BoxFuture<'static, BusResult<T>> + Send + Sync + 'static>;

/// A bucket or stream handle opened on first use. Opening one is a request
/// the server answers with the stream's configuration and state; agents
/// open only what they use, so a fleet starting at once does not make the
/// server pay for handles nobody needs. A failed opening is tried again on
/// the next use.
pub(crate) struct Lazy<T> {
    cell: tokio::sync::OnceCell<T>,
    open: Opener<T>,
}

impl<T> Lazy<T> {
    /// A handle opened already.
    pub(crate) fn ready(value: T) -> Self {
        Lazy {
            cell: tokio::sync::OnceCell::new_with(Some(value)),
            open: Box::new(|| Box::pin(async { Err(BusError::Backend("opened already".into())) })),
        }
    }

    /// A handle `open` opens on first use.
    pub(crate) fn later<F, Fut>(open: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = BusResult<T>> + Send + 'static,
    {
        Lazy {
            cell: tokio::sync::OnceCell::new(),
            open: Box::new(move || Box::pin(open())),
        }
    }

    /// The handle, opened now if it was not.
    pub(crate) async fn get(&self) -> BusResult<&T> {
        self.cell.get_or_try_init(|| (self.open)()).await
    }
}

impl Lazy<async_nats::jetstream::stream::Stream> {
    /// The stream `name`, opened on first use; an error names it as `shown`
    /// (the bucket an operator knows, for an object store's stream).
    pub(crate) fn stream(js: &async_nats::jetstream::Context, name: &str, shown: &str) -> Self {
        let (js, name, shown) = (js.clone(), name.to_string(), shown.to_string());
        Lazy::later(move || {
            let (js, name, shown) = (js.clone(), name.clone(), shown.clone());
            async move {
                js.get_stream(&name)
                    .await
                    .map_err(|e| super::missing(&shown, e))
            }
        })
    }
}

impl Lazy<kv::Store> {
    /// The key-value bucket `name` (full name), opened on first use.
    pub(crate) fn bucket(js: &async_nats::jetstream::Context, name: &str) -> Self {
        let (js, name) = (js.clone(), name.to_string());
        Lazy::later(move || {
            let (js, name) = (js.clone(), name.clone());
            async move {
                js.get_key_value(&name)
                    .await
                    .map_err(|e| super::missing(&name, e))
            }
        })
    }
}

#[cfg(test)]
mod lazy_tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_handle_opens_once_and_a_failed_opening_is_tried_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let lazy = Lazy::later(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(BusError::Unavailable("not yet".into()))
                } else {
                    Ok(n)
                }
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 0, "nothing opens before use");
        assert!(lazy.get().await.is_err());
        assert_eq!(*lazy.get().await.unwrap(), 1);
        assert_eq!(*lazy.get().await.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(*Lazy::ready(7).get().await.unwrap(), 7);
    }
}
