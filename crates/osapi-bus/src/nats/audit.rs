//! The audit log on NATS: one key per entry in a bucket with a max-age.

use async_nats::jetstream::kv;
use async_trait::async_trait;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use super::util::{backend, encode, get_json, get_many, keys_with_prefix};
use crate::{AuditStore, BusResult};

/// Audit entries on NATS.
pub struct NatsAuditStore {
    store: kv::Store,
}

impl NatsAuditStore {
    pub(crate) fn new(store: kv::Store) -> Self {
        NatsAuditStore { store }
    }

    async fn all(&self) -> BusResult<Vec<AuditEntry>> {
        let keys = keys_with_prefix(&self.store, "").await?;
        let mut entries: Vec<AuditEntry> = get_many(&self.store, keys).await?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
        Ok(entries)
    }
}

#[async_trait]
impl AuditStore for NatsAuditStore {
    async fn put(&self, entry: AuditEntry) -> BusResult<()> {
        self.store
            .put(entry.id.to_string(), encode(&entry)?)
            .await
            .map_err(|e| backend("write audit entry", e))?;
        Ok(())
    }

    async fn list(&self, offset: usize, limit: usize) -> BusResult<(usize, Vec<AuditEntry>)> {
        let all = self.all().await?;
        let total = all.len();
        Ok((total, all.into_iter().skip(offset).take(limit).collect()))
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<AuditEntry>> {
        get_json(&self.store, &id.to_string()).await
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        self.all().await
    }
}
