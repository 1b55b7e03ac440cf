//! The audit log on NATS: two key-value buckets with a max-age and a byte
//! limit, one for allowed requests (`<ns>-audit-log`) and one for denied
//! ones (`<ns>-audit-log-denied`), so that denied requests can never push
//! allowed ones out. Entries are never rewritten, so a bucket's stream holds
//! them in write order: a page is read by stream sequence, newest first,
//! with one direct get per entry returned.

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use super::util::{backend, decode, encode, get_json, scan};
use crate::traits::merge_newest;
use crate::{AuditStore, BusResult};

/// Audit entries on NATS.
pub struct NatsAuditStore {
    allowed: kv::Store,
    denied: kv::Store,
}

/// Entries read at once.
const READ_AHEAD: usize = 32;

impl NatsAuditStore {
    pub(crate) fn new(allowed: kv::Store, denied: kv::Store) -> Self {
        NatsAuditStore { allowed, denied }
    }

    /// The number of entries and the newest `n` of one bucket, newest first.
    async fn newest(store: &kv::Store, n: usize) -> BusResult<(usize, Vec<AuditEntry>)> {
        let info = store
            .stream
            .get_info()
            .await
            .map_err(|e| backend("read the audit log's size", e))?;
        let state = info.state;
        if state.messages == 0 || n == 0 {
            return Ok((state.messages as usize, Vec::new()));
        }
        let lowest = state
            .first_sequence
            .max(state.last_sequence.saturating_sub(n as u64 - 1));
        let entries: Vec<Option<AuditEntry>> =
            futures::stream::iter((lowest..=state.last_sequence).rev())
                .map(|seq| async move {
                    match store.stream.direct_get(seq).await {
                        Ok(m) if !m.payload.is_empty() => {
                            decode::<AuditEntry>("audit entry", &m.payload).ok()
                        }
                        // Expired between the size check and the read.
                        _ => None,
                    }
                })
                .buffered(READ_AHEAD)
                .collect()
                .await;
        Ok((
            state.messages as usize,
            entries.into_iter().flatten().collect(),
        ))
    }

    async fn every(store: &kv::Store) -> BusResult<Vec<AuditEntry>> {
        let mut entries: Vec<AuditEntry> = scan(store)
            .await?
            .into_iter()
            .filter_map(|(_, value)| decode("audit entry", &value).ok())
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.ended()));
        Ok(entries)
    }
}

#[async_trait]
impl AuditStore for NatsAuditStore {
    async fn put(&self, entry: AuditEntry) -> BusResult<()> {
        let store = if entry.denied() {
            &self.denied
        } else {
            &self.allowed
        };
        store
            .put(entry.id.to_string(), encode(&entry)?)
            .await
            .map_err(|e| backend("write audit entry", e))?;
        Ok(())
    }

    async fn list(&self, offset: usize, limit: usize) -> BusResult<(usize, Vec<AuditEntry>)> {
        let n = offset.saturating_add(limit);
        let (allowed, denied) = tokio::try_join!(
            Self::newest(&self.allowed, n),
            Self::newest(&self.denied, n)
        )?;
        let page = merge_newest(allowed.1, denied.1, n)
            .into_iter()
            .skip(offset)
            .collect();
        Ok((allowed.0 + denied.0, page))
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<AuditEntry>> {
        let key = id.to_string();
        match get_json(&self.allowed, &key).await? {
            Some(e) => Ok(Some(e)),
            None => get_json(&self.denied, &key).await,
        }
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        let (allowed, denied) =
            tokio::try_join!(Self::every(&self.allowed), Self::every(&self.denied))?;
        Ok(merge_newest(allowed, denied, usize::MAX))
    }
}
