//! Health and statistics of the NATS backend: connection state, bucket and
//! stream statistics, consumers.

use std::sync::Arc;

use async_nats::connection::State;
use async_nats::jetstream::{kv, stream};
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::health::{ConsumerDetail, KvBucketInfo, ObjectStoreInfo, StreamInfo};

use super::Conn;
use super::util::Lazy;
use crate::{BusStats, BusStatus, ComponentCheck};

/// Reports on the NATS connection and its streams and buckets.
pub struct NatsStatus {
    pub(super) conn: Arc<Conn>,
    pub(super) stream: Arc<Lazy<stream::Stream>>,
    pub(super) buckets: Vec<Arc<Lazy<kv::Store>>>,
    /// The object store's stream.
    pub(super) objects: Arc<Lazy<stream::Stream>>,
}

#[async_trait]
impl BusStatus for NatsStatus {
    fn backend(&self) -> &'static str {
        "nats"
    }

    fn url(&self) -> String {
        self.conn.config.url.clone()
    }

    fn reconnects(&self) -> u64 {
        let connects = self
            .conn
            .client
            .statistics()
            .connects
            .load(std::sync::atomic::Ordering::Relaxed);
        connects.saturating_sub(1)
    }

    fn server_version(&self) -> String {
        self.conn.client.server_info().version
    }

    async fn check(&self) -> Vec<ComponentCheck> {
        let connected = self.conn.client.connection_state() == State::Connected;
        let nats = ComponentCheck {
            component: "nats".into(),
            result: if connected {
                Ok(())
            } else {
                Err("nats not connected".into())
            },
        };
        let kv = match self.buckets.first() {
            Some(b) if connected => match b.get().await {
                Ok(b) => match b.stream.get_info().await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!("kv bucket not accessible: {e}")),
                },
                Err(e) => Err(format!("kv bucket not accessible: {e}")),
            },
            Some(_) => Err("kv bucket not accessible: nats not connected".into()),
            None => Err("no kv bucket".into()),
        };
        vec![
            nats,
            ComponentCheck {
                component: "kv".into(),
                result: kv,
            },
        ]
    }

    async fn stats(&self) -> BusStats {
        let mut stats = BusStats::default();
        let stream = self.stream.get().await.ok();
        if let Some(info) = match stream {
            Some(s) => s.get_info().await.ok(),
            None => None,
        } {
            stats.streams.push(StreamInfo {
                name: info.config.name.clone(),
                messages: info.state.messages,
                bytes: info.state.bytes,
                consumers: info.state.consumer_count as u64,
            });
        }
        // Fresh from the server (`kv::Store::status` is what the store saw
        // when it was opened).
        for b in &self.buckets {
            let Ok(b) = b.get().await else { continue };
            if let Ok(info) = b.stream.get_info().await {
                stats.kv_buckets.push(KvBucketInfo {
                    name: b.name.clone(),
                    keys: info.state.messages,
                    bytes: info.state.bytes,
                });
            }
        }
        // The stream's bytes (content and metadata), read without a consumer.
        let size = match self.objects.get().await {
            Ok(s) => s.get_info().await.map(|i| i.state.bytes).unwrap_or(0),
            Err(_) => 0,
        };
        stats.object_stores.push(ObjectStoreInfo {
            name: self.conn.config.name(&self.conn.config.objects.name),
            size,
        });
        let Some(stream) = stream else { return stats };
        let mut consumers = stream.consumers();
        while let Some(Ok(c)) = consumers.next().await {
            stats.consumers.push(ConsumerDetail {
                name: c.name.clone(),
                pending: c.num_pending,
                ack_pending: c.num_ack_pending as u64,
                redelivered: c.num_redelivered as u64,
            });
        }
        stats
    }
}
