//! The audit log on NATS: three key-value buckets with a max-age and a byte
//! limit each, for changes (`<ns>-audit-log`), reads (`<ns>-audit-log-reads`)
//! and denied requests (`<ns>-audit-log-denied`), so that a flood of reads or
//! refusals can never push the record of a change out. A full bucket drops
//! its oldest entries (discard-old), so the log never stops taking new ones.
//! Entries are never rewritten, so a bucket's stream holds them in write
//! order: a page is read by stream sequence, newest first, with one direct
//! get per entry it may return.

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use super::util::{Lazy, backend, decode, encode, get_json, scan};
use crate::traits::merge_newest;
use crate::{AuditStore, BusResult};

/// Audit entries on NATS, one bucket per [`AuditLog`](osapi_api::audit::AuditLog) (in its order).
pub struct NatsAuditStore {
    logs: [std::sync::Arc<Lazy<kv::Store>>; 3],
}

/// Entries read at once.
const READ_AHEAD: usize = 32;

impl NatsAuditStore {
    pub(crate) fn new(logs: [std::sync::Arc<Lazy<kv::Store>>; 3]) -> Self {
        NatsAuditStore { logs }
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
        self.logs[entry.log().index()]
            .get()
            .await?
            .put(entry.id.to_string(), encode(&entry)?)
            .await
            .map_err(|e| backend("write audit entry", e))?;
        Ok(())
    }

    async fn list(&self, offset: usize, limit: usize) -> BusResult<(usize, Vec<AuditEntry>)> {
        let n = offset.saturating_add(limit);
        let read = futures::future::try_join_all(
            self.logs
                .iter()
                .map(|l| async move { Self::newest(l.get().await?, n).await }),
        )
        .await?;
        let total = read.iter().map(|(count, _)| count).sum();
        let page = merge_newest(read.into_iter().map(|(_, e)| e).collect(), n)
            .into_iter()
            .skip(offset)
            .collect();
        Ok((total, page))
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<AuditEntry>> {
        let key = id.to_string();
        for log in &self.logs {
            if let Some(e) = get_json(log.get().await?, &key).await? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        let all = futures::future::try_join_all(
            self.logs
                .iter()
                .map(|l| async move { Self::every(l.get().await?).await }),
        )
        .await?;
        Ok(merge_newest(all, usize::MAX))
    }
}
