//! Uploaded files in a NATS object store (content type in the
//! `Osapi-Content-Type` header, as upstream) and deployed-file records in a
//! key-value bucket.

use async_nats::HeaderMap;
use async_nats::jetstream::{kv, object_store, stream};
use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use osapi_api::records::{FileState, ObjectInfo};
use osapi_api::target::sanitize_key;
use sha2::{Digest, Sha256};

use super::util::{Lazy, backend, encode, get_json};
use crate::{BusResult, FileStateStore, ObjectStore};

const CONTENT_TYPE_HEADER: &str = "Osapi-Content-Type";

/// Files on NATS.
pub struct NatsObjectStore {
    store: Lazy<object_store::ObjectStore>,
    /// The store's stream, for listing without a consumer.
    stream: std::sync::Arc<Lazy<stream::Stream>>,
    /// The bucket's name.
    bucket: String,
    /// Contents read lately, by object version: a file deployed again and
    /// again is read from the store once.
    recent: std::sync::Mutex<RecentObjects>,
    /// Subject filter of the metadata entries: `$O.<bucket>.M.>`.
    meta: String,
}

impl NatsObjectStore {
    pub(crate) fn new(
        store: Lazy<object_store::ObjectStore>,
        stream: std::sync::Arc<Lazy<stream::Stream>>,
        bucket: &str,
    ) -> Self {
        NatsObjectStore {
            store,
            stream,
            bucket: bucket.to_string(),
            recent: Default::default(),
            meta: format!("$O.{bucket}.M.>"),
        }
    }
}

fn convert(info: &object_store::ObjectInfo) -> ObjectInfo {
    // Digest is "SHA-256=<base64url with padding>"; we show lowercase hex.
    let sha256 = info
        .digest
        .as_deref()
        .and_then(|d| d.strip_prefix("SHA-256="))
        .and_then(|b| {
            base64::engine::general_purpose::URL_SAFE
                .decode(b)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b))
                .ok()
        })
        .map(hex::encode)
        .unwrap_or_default();
    let content_type = info
        .headers
        .as_ref()
        .and_then(|h| h.get(CONTENT_TYPE_HEADER))
        .map(|v| v.to_string())
        .or_else(|| info.metadata.get("content_type").cloned())
        .unwrap_or_default();
    ObjectInfo {
        name: info.name.clone(),
        sha256,
        size: info.size as u64,
        content_type,
    }
}

fn not_found(e: &impl std::fmt::Display) -> bool {
    let t = e.to_string().to_lowercase();
    t.contains("not found")
}

#[async_trait]
impl ObjectStore for NatsObjectStore {
    async fn put(&self, name: &str, content_type: &str, data: Bytes) -> BusResult<ObjectInfo> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE_HEADER, content_type);
        let meta = object_store::ObjectMetadata {
            name: name.to_string(),
            metadata: [("content_type".to_string(), content_type.to_string())].into(),
            headers: Some(headers),
            ..Default::default()
        };
        let mut reader: &[u8] = &data;
        let info = self
            .store
            .get()
            .await?
            .put(meta, &mut reader)
            .await
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("maximum bytes") || text.contains("insufficient resources") {
                    crate::BusError::Full(format!(
                        "the object store is at its byte limit (nats.objects.max_bytes): {text}"
                    ))
                } else {
                    backend(&format!("store file {name}"), e)
                }
            })?;
        let mut out = convert(&info);
        if out.sha256.is_empty() {
            out.sha256 = hex::encode(Sha256::digest(&data));
        }
        Ok(out)
    }

    async fn get(&self, name: &str) -> BusResult<Option<(ObjectInfo, Bytes)>> {
        // The object's chunks are read one direct get each, from the
        // sequence after the previous one: no consumer is created (creating
        // and deleting one per read cost nats-server more than the read).
        // A replacement racing the read shows as a digest mismatch: read again.
        for _ in 0..READ_ATTEMPTS {
            let info = match self.store.get().await?.info(name).await {
                Ok(info) if !info.deleted => info,
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == object_store::InfoErrorKind::NotFound || not_found(&e) => {
                    return Ok(None);
                }
                Err(e) => return Err(backend(&format!("read file {name}"), e)),
            };
            let out = convert(&info);
            // A version (nuid) is never rewritten: same nuid, same content.
            if let Some(data) = crate::lock(&self.recent).get(&info.nuid, &out.sha256) {
                return Ok(Some((out, data)));
            }
            if let Some(data) = self.read_chunks(&info).await?
                && (out.sha256.is_empty() || hex::encode(Sha256::digest(&data)) == out.sha256)
            {
                crate::lock(&self.recent).put(&info.nuid, &out, &data);
                return Ok(Some((out, data)));
            }
        }
        Err(crate::BusError::Backend(format!(
            "read file {name}: it kept changing while being read"
        )))
    }

    async fn get_version(
        &self,
        name: &str,
        sha256: &str,
    ) -> BusResult<Option<(ObjectInfo, Bytes)>> {
        // Held since it was read (and checked against its digest): nothing
        // to ask the store.
        if let Some(held) = crate::lock(&self.recent).version(name, sha256) {
            return Ok(Some(held));
        }
        self.get(name).await
    }

    async fn info(&self, name: &str) -> BusResult<Option<ObjectInfo>> {
        match self.store.get().await?.info(name).await {
            Ok(info) if !info.deleted => Ok(Some(convert(&info))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound || not_found(&e) => {
                Ok(None)
            }
            Err(e) => Err(backend(&format!("read file info {name}"), e)),
        }
    }

    async fn list(&self) -> BusResult<Vec<ObjectInfo>> {
        // The metadata subjects, then each one's latest entry: no consumer
        // is created (a listing per request must not leave consumers behind).
        let stream = self.stream.get().await?;
        let subjects: Vec<(String, usize)> = stream
            .info_with_subjects(&self.meta)
            .await
            .map_err(|e| backend("list files", e))?
            .try_collect()
            .await
            .map_err(|e| backend("list files", e))?;
        let infos: Vec<BusResult<Option<ObjectInfo>>> = futures::stream::iter(subjects)
            .map(|(subject, _)| async move {
                match stream.direct_get_last_for_subject(subject).await {
                    Ok(m) => Ok(
                        serde_json::from_slice::<object_store::ObjectInfo>(&m.payload)
                            .ok()
                            .filter(|i| !i.deleted)
                            .map(|i| convert(&i)),
                    ),
                    Err(e) if not_found(&e) => Ok(None),
                    Err(e) => Err(backend("list files", e)),
                }
            })
            .buffered(32)
            .collect()
            .await;
        let mut out = Vec::new();
        for info in infos {
            out.extend(info?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn delete(&self, name: &str) -> BusResult<bool> {
        if self.info(name).await?.is_none() {
            return Ok(false);
        }
        self.store
            .get()
            .await?
            .delete(name)
            .await
            .map_err(|e| backend(&format!("delete file {name}"), e))?;
        Ok(true)
    }
}

/// Reads of an object that met a concurrent replacement before giving up.
const READ_ATTEMPTS: usize = 3;
/// Bytes of object contents kept in memory, and the largest one kept.
const RECENT_BYTES: usize = 1 << 20;
const RECENT_LARGEST: usize = 256 << 10;

/// Small object contents read lately, oldest first, within `RECENT_BYTES`.
/// Every one was checked against its SHA-256 digest when read.
#[derive(Default)]
struct RecentObjects {
    entries: std::collections::VecDeque<Recent>,
    bytes: usize,
}

/// One object version read lately.
struct Recent {
    nuid: String,
    info: ObjectInfo,
    data: Bytes,
}

impl RecentObjects {
    /// The content of the version stored as `nuid` with digest `sha256`.
    fn get(&self, nuid: &str, sha256: &str) -> Option<Bytes> {
        self.entries
            .iter()
            .find(|r| r.nuid == nuid && r.info.sha256 == sha256)
            .map(|r| r.data.clone())
    }

    /// The version of object `name` whose digest is `sha256`.
    fn version(&self, name: &str, sha256: &str) -> Option<(ObjectInfo, Bytes)> {
        self.entries
            .iter()
            .rev()
            .find(|r| r.info.name == name && r.info.sha256 == sha256)
            .map(|r| (r.info.clone(), r.data.clone()))
    }

    fn put(&mut self, nuid: &str, info: &ObjectInfo, data: &Bytes) {
        if data.len() > RECENT_LARGEST
            || info.sha256.is_empty()
            || self.get(nuid, &info.sha256).is_some()
        {
            return;
        }
        self.bytes += data.len();
        self.entries.push_back(Recent {
            nuid: nuid.to_string(),
            info: info.clone(),
            data: data.clone(),
        });
        while self.bytes > RECENT_BYTES {
            let Some(old) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= old.data.len();
        }
    }
}

impl NatsObjectStore {
    /// An object's content, or `None` when its chunks are gone (replaced
    /// or deleted since `info` was read).
    async fn read_chunks(&self, info: &object_store::ObjectInfo) -> BusResult<Option<Bytes>> {
        let subject = format!("$O.{}.C.{}", self.bucket, info.nuid);
        let mut buf = Vec::with_capacity(info.size);
        let mut next = 1;
        let stream = self.stream.get().await?;
        for _ in 0..info.chunks {
            let chunk = match stream
                .direct_get_next_for_subject(subject.as_str(), Some(next))
                .await
            {
                Ok(m) => m,
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(backend(&format!("read file {}", info.name), e)),
            };
            buf.extend_from_slice(&chunk.payload);
            next = chunk.sequence + 1;
        }
        Ok((buf.len() == info.size).then(|| Bytes::from(buf)))
    }
}

/// Deployed-file records on NATS.
pub struct NatsFileStateStore {
    store: std::sync::Arc<Lazy<kv::Store>>,
}

impl NatsFileStateStore {
    pub(crate) fn new(store: std::sync::Arc<Lazy<kv::Store>>) -> Self {
        NatsFileStateStore { store }
    }
}

fn state_key(hostname: &str, path: &str) -> String {
    format!(
        "{}.{}",
        sanitize_key(hostname),
        hex::encode(Sha256::digest(path.as_bytes()))
    )
}

#[async_trait]
impl FileStateStore for NatsFileStateStore {
    async fn put(&self, hostname: &str, state: FileState) -> BusResult<()> {
        self.store
            .get()
            .await?
            .put(state_key(hostname, &state.path), encode(&state)?)
            .await
            .map_err(|e| backend("record deployed file", e))?;
        Ok(())
    }

    async fn get(&self, hostname: &str, path: &str) -> BusResult<Option<FileState>> {
        get_json(self.store.get().await?, &state_key(hostname, path)).await
    }
}
