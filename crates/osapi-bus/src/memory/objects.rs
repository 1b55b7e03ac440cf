//! In-memory object store and deployed-file records.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use osapi_api::records::{FileState, ObjectInfo};
use sha2::{Digest, Sha256};

use crate::lock;
use crate::{BusResult, FileStateStore, ObjectStore};

/// Uploaded files held in memory.
#[derive(Default)]
pub struct MemoryObjectStore {
    objects: Mutex<BTreeMap<String, (ObjectInfo, Bytes)>>,
}

impl MemoryObjectStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
        lock(&self.objects).insert(name.to_string(), (info.clone(), data));
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
