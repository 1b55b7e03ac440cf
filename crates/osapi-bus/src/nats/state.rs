//! Drain flags and agent timelines on NATS (`drain.<host>`,
//! `timeline.<host>.<event>.<nanos>`); a watch on the flags tells agents and
//! controllers about drains at once.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::agent::TimelineEvent;
use osapi_api::target::sanitize_key;
use tokio::sync::broadcast;

use super::util::{backend, encode, get_many, keys_with_prefix};
use crate::{AgentStateStore, BusResult};

/// Drain flags and timelines on NATS.
pub struct NatsStateStore {
    store: kv::Store,
    changes: broadcast::Sender<String>,
    _alive: tokio::sync::watch::Sender<()>,
}

impl NatsStateStore {
    /// Watches the drain flags under `keys` (`drain.>` on controllers, an
    /// agent's own `drain.<host>`).
    pub(crate) fn start(store: kv::Store, keys: String) -> Self {
        let changes = broadcast::channel(256).0;
        let (alive, stop) = tokio::sync::watch::channel(());
        tokio::spawn(watch_drains(store.clone(), keys, changes.clone(), stop));
        NatsStateStore {
            store,
            changes,
            _alive: alive,
        }
    }
}

async fn watch_drains(
    store: kv::Store,
    keys: String,
    changes: broadcast::Sender<String>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    loop {
        let watch = tokio::select! {
            _ = stop.changed() => return,
            w = store.watch(&keys) => w,
        };
        if let Ok(mut watch) = watch {
            loop {
                let entry = tokio::select! {
                    _ = stop.changed() => return,
                    e = watch.next() => e,
                };
                let Some(Ok(entry)) = entry else { break };
                let host = entry.key.trim_start_matches("drain.").to_string();
                let _ = changes.send(host);
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

fn drain_key(hostname: &str) -> String {
    format!("drain.{}", sanitize_key(hostname))
}

#[async_trait]
impl AgentStateStore for NatsStateStore {
    async fn set_drain(&self, hostname: &str) -> BusResult<()> {
        self.store
            .put(drain_key(hostname), "1".into())
            .await
            .map_err(|e| backend(&format!("set drain flag of {hostname}"), e))?;
        Ok(())
    }

    async fn clear_drain(&self, hostname: &str) -> BusResult<()> {
        self.store
            .purge(drain_key(hostname))
            .await
            .map_err(|e| backend(&format!("clear drain flag of {hostname}"), e))
    }

    async fn is_drained(&self, hostname: &str) -> BusResult<bool> {
        let v = self
            .store
            .get(drain_key(hostname))
            .await
            .map_err(|e| backend(&format!("read drain flag of {hostname}"), e))?;
        Ok(v.is_some_and(|b| !b.is_empty()))
    }

    async fn drained(&self) -> BusResult<BTreeSet<String>> {
        // Cleared flags leave a purge marker under their key: read each value.
        let keys = keys_with_prefix(&self.store, "drain.").await?;
        let flags: Vec<BusResult<Option<String>>> = futures::stream::iter(keys)
            .map(|k| async move {
                let v = self
                    .store
                    .get(&k)
                    .await
                    .map_err(|e| backend("read drain flags", e))?;
                Ok(v.filter(|b| !b.is_empty())
                    .map(|_| k.trim_start_matches("drain.").to_string()))
            })
            .buffered(32)
            .collect()
            .await;
        let mut out = BTreeSet::new();
        for f in flags {
            out.extend(f?);
        }
        Ok(out)
    }

    async fn append_timeline(&self, event: TimelineEvent) -> BusResult<()> {
        let key = format!(
            "timeline.{}.{}.{}",
            sanitize_key(&event.hostname),
            sanitize_key(&event.event),
            event.timestamp.unix_timestamp_nanos()
        );
        self.store
            .put(key, encode(&event)?)
            .await
            .map_err(|e| backend("write timeline event", e))?;
        Ok(())
    }

    async fn timeline(&self, hostname: &str) -> BusResult<Vec<TimelineEvent>> {
        let keys = keys_with_prefix(
            &self.store,
            &format!("timeline.{}.", sanitize_key(hostname)),
        )
        .await?;
        let mut events: Vec<TimelineEvent> = get_many(&self.store, keys).await?;
        events.sort_by_key(|e| e.timestamp);
        Ok(events)
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }
}
