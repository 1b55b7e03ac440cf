//! In-memory object store and deployed-file records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use osapi_api::records::{FileState, ObjectInfo};
use sha2::{Digest, Sha256};

use crate::lock;
use crate::{BusError, BusResult, FileStateStore, ObjectStore};

/// Uploaded files held in memory, up to a total size.
pub struct MemoryObjectStore {
    objects: Mutex<BTreeMap<String, (ObjectInfo, Bytes)>>,
    max_bytes: u64,
}

impl Default for MemoryObjectStore {
    fn default() -> Self {
        Self::new(u64::MAX)
    }
}

impl MemoryObjectStore {
    /// An empty store holding at most `max_bytes` of content; an upload that
    /// would go past it fails with [`BusError::Full`] and changes nothing.
    pub fn new(max_bytes: u64) -> Self {
        MemoryObjectStore {
            objects: Mutex::new(BTreeMap::new()),
            max_bytes,
        }
    }

    /// Total size of the objects held, in bytes.
    pub fn usage(&self) -> u64 {
        lock(&self.objects).values().map(|o| o.0.size).sum()
    }
}

#[async_trait]
impl ObjectStore for MemoryObjectStore {
    async fn put(&self, name: &str, content_type: &str, data: Bytes) -> BusResult<ObjectInfo> {
        let info = ObjectInfo {
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(&data)),
            size: data.len() as u64,
            content_type: content_type.to_string(),
        };
        let mut objects = lock(&self.objects);
        let replaced = objects.get(name).map_or(0, |o| o.0.size);
        let used: u64 = objects.values().map(|o| o.0.size).sum();
        let after = used - replaced + info.size;
        if after > self.max_bytes {
            return Err(BusError::Full(format!(
                "storing {} bytes would bring the file store to {after} bytes, over its limit of {} \
                 (nats.objects.max_bytes); delete files or raise the limit",
                info.size, self.max_bytes
            )));
        }
        objects.insert(name.to_string(), (info.clone(), data));
        Ok(info)
    }

    async fn get(&self, name: &str) -> BusResult<Option<(ObjectInfo, Bytes)>> {
        Ok(lock(&self.objects).get(name).cloned())
    }

    async fn info(&self, name: &str) -> BusResult<Option<ObjectInfo>> {
        Ok(lock(&self.objects).get(name).map(|o| o.0.clone()))
    }

    async fn list(&self) -> BusResult<Vec<ObjectInfo>> {
        Ok(lock(&self.objects).values().map(|o| o.0.clone()).collect())
    }

    async fn delete(&self, name: &str) -> BusResult<bool> {
        Ok(lock(&self.objects).remove(name).is_some())
    }
}

/// Deployed-file records held in memory.
#[derive(Default)]
pub struct MemoryFileStateStore {
    states: Mutex<HashMap<(String, String), FileState>>,
}

impl MemoryFileStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        lock(&self.states).len()
    }

    /// True when there is no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl FileStateStore for MemoryFileStateStore {
    async fn put(&self, hostname: &str, state: FileState) -> BusResult<()> {
        lock(&self.states).insert((hostname.to_string(), state.path.clone()), state);
        Ok(())
    }

    async fn get(&self, hostname: &str, path: &str) -> BusResult<Option<FileState>> {
        Ok(lock(&self.states)
            .get(&(hostname.to_string(), path.to_string()))
            .cloned())
    }
}
