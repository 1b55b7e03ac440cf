//! Agent registry and facts on NATS. Registrations live in a bucket whose
//! max-age is the TTL, so a dead agent's entry expires on its own. Expiry
//! produces no watch event, so a task also rescans the registry every quarter
//! TTL to announce agents that left.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::records::{AgentRegistration, Facts};
use osapi_api::target::sanitize_key;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Conn;
use super::util::{backend, encode, get_json, get_many, keys_with_prefix};
use crate::{BusResult, FactStore, Registry, RegistryEvent};

/// Agent registrations on NATS.
pub struct NatsRegistry {
    store: kv::Store,
    ttl: Duration,
    /// Made by the first subscriber, with the tracker: agents never
    /// subscribe, so they carry no event buffer.
    events: std::sync::OnceLock<broadcast::Sender<RegistryEvent>>,
    /// Starts tracking on the first subscriber (controllers; agents never do).
    tracker: std::sync::Mutex<Option<tokio::sync::watch::Receiver<()>>>,
    /// The revision of each key this process wrote last: the next write of
    /// the key expects it, and fails if another process wrote in between.
    /// With the instance id it wrote.
    written: std::sync::Mutex<HashMap<String, (u64, Uuid)>>,
    _alive: tokio::sync::watch::Sender<()>,
}

fn agent_key(hostname: &str) -> String {
    format!("agents.{}", sanitize_key(hostname))
}

impl NatsRegistry {
    pub(crate) fn start(conn: Arc<Conn>, store: kv::Store) -> Self {
        let ttl = conn.config.registry.max_age;
        let (alive, stop) = tokio::sync::watch::channel(());
        NatsRegistry {
            store,
            ttl,
            events: std::sync::OnceLock::new(),
            tracker: std::sync::Mutex::new(Some(stop)),
            written: std::sync::Mutex::new(HashMap::new()),
            _alive: alive,
        }
    }
}

async fn list(store: &kv::Store) -> BusResult<Vec<AgentRegistration>> {
    let keys = keys_with_prefix(store, "agents.").await?;
    let mut all: Vec<AgentRegistration> = get_many(store, keys).await?;
    all.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(all)
}

/// Announces joins (from the watch) and departures (deletes from the watch,
/// expiries from periodic scans).
/// Agents announced as live: sanitised key → (hostname, instance).
type Known = HashMap<String, (String, Uuid)>;

/// Announces `r` as joined unless this very instance already was.
fn note_join(
    known: &mut Known,
    events: &broadcast::Sender<RegistryEvent>,
    key: String,
    r: &AgentRegistration,
) {
    if known.get(&key).map(|(_, i)| *i) != Some(r.instance_id) {
        known.insert(key, (r.hostname.clone(), r.instance_id));
        let _ = events.send(RegistryEvent::Joined {
            hostname: r.hostname.clone(),
            instance_id: r.instance_id,
        });
    }
}

/// Announces the agent under `key` as gone, if it was known.
fn note_leave(known: &mut Known, events: &broadcast::Sender<RegistryEvent>, key: &str) {
    if let Some((hostname, _)) = known.remove(key) {
        let _ = events.send(RegistryEvent::Left { hostname });
    }
}

async fn track(
    store: kv::Store,
    ttl: Duration,
    events: broadcast::Sender<RegistryEvent>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut known = Known::new();
    let scan_every = (ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut scan = tokio::time::interval(scan_every);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watch = None;
    loop {
        if watch.is_none() {
            watch = store.watch("agents.>").await.ok();
        }
        let entry = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = scan.tick() => {
                if watch.is_none() {
                    continue;
                }
                let Ok(live) = list(&store).await else { continue };
                let mut live_keys = HashSet::new();
                for r in &live {
                    let key = sanitize_key(&r.hostname);
                    live_keys.insert(key.clone());
                    note_join(&mut known, &events, key, r);
                }
                let gone: Vec<String> = known.keys().filter(|k| !live_keys.contains(*k)).cloned().collect();
                for k in gone {
                    note_leave(&mut known, &events, &k);
                }
            }
            e = entry => match e {
                Some(Ok(entry)) => {
                    let key = entry.key.trim_start_matches("agents.").to_string();
                    if entry.operation != kv::Operation::Put {
                        note_leave(&mut known, &events, &key);
                    } else if let Ok(r) = serde_json::from_slice::<AgentRegistration>(&entry.value) {
                        note_join(&mut known, &events, key, &r);
                    }
                }
                // The watch broke (server restart): open it again on the next turn.
                _ => watch = None,
            },
        }
    }
}

#[async_trait]
impl Registry for NatsRegistry {
    async fn put(&self, registration: AgentRegistration) -> BusResult<Option<Uuid>> {
        let key = agent_key(&registration.hostname);
        let value = encode(&registration)?;
        let what = format!("register {}", registration.hostname);
        let last = crate::lock(&self.written).get(&key).map(|w| w.0);
        let mut replaced = None;
        if let Some(last) = last {
            match self.store.update(&key, value.clone(), last).await {
                Ok(revision) => {
                    crate::lock(&self.written).insert(key, (revision, registration.instance_id));
                    return Ok(None);
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // Written since by somebody else, or expired: whose is
                    // it now? A server that does not let this process read
                    // its key back cannot say; the heartbeat goes on.
                    match get_json::<AgentRegistration>(&self.store, &key).await {
                        Ok(now) => {
                            replaced = now
                                .map(|r| r.instance_id)
                                .filter(|id| *id != registration.instance_id);
                        }
                        Err(e) => tracing::debug!(error = %e, "registration not read back"),
                    }
                }
                Err(e) => return Err(backend(&what, e)),
            }
        }
        let revision = self
            .store
            .put(&key, value)
            .await
            .map_err(|e| backend(&what, e))?;
        crate::lock(&self.written).insert(key, (revision, registration.instance_id));
        Ok(replaced)
    }

    async fn get(&self, hostname: &str) -> BusResult<Option<AgentRegistration>> {
        get_json(&self.store, &agent_key(hostname)).await
    }

    async fn list(&self) -> BusResult<Vec<AgentRegistration>> {
        list(&self.store).await
    }

    async fn remove(&self, hostname: &str, instance_id: Uuid) -> BusResult<()> {
        let key = agent_key(hostname);
        let what = format!("deregister {hostname}");
        let written = crate::lock(&self.written).get(&key).copied();
        // The revision `instance_id` wrote: as this process last wrote it,
        // or else as read now.
        let revision = match written {
            Some((revision, writer)) if writer == instance_id => revision,
            _ => {
                let entry = self
                    .store
                    .entry(&key)
                    .await
                    .map_err(|e| backend(&what, e))?;
                let Some(entry) = entry.filter(|e| {
                    e.operation == kv::Operation::Put
                        && serde_json::from_slice::<AgentRegistration>(&e.value)
                            .is_ok_and(|r| r.instance_id == instance_id)
                }) else {
                    return Ok(());
                };
                entry.revision
            }
        };
        match self.store.purge_expect_revision(&key, Some(revision)).await {
            // Written since: by another process, whose it is now.
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(()),
            done => done.map_err(|e| backend(&what, e)),
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        let events = self.events.get_or_init(|| broadcast::channel(1024).0);
        let rx = events.subscribe();
        if let Some(stop) = crate::lock(&self.tracker).take() {
            tokio::spawn(track(self.store.clone(), self.ttl, events.clone(), stop));
        }
        rx
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Agent facts on NATS.
pub struct NatsFactStore {
    store: kv::Store,
}

impl NatsFactStore {
    pub(crate) fn new(store: kv::Store) -> Self {
        NatsFactStore { store }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredFacts {
    hostname: String,
    facts: Facts,
}

#[async_trait]
impl FactStore for NatsFactStore {
    async fn put(&self, hostname: &str, facts: Facts) -> BusResult<()> {
        let value = encode(&StoredFacts {
            hostname: hostname.to_string(),
            facts,
        })?;
        self.store
            .put(format!("facts.{}", sanitize_key(hostname)), value)
            .await
            .map_err(|e| backend(&format!("write facts of {hostname}"), e))?;
        Ok(())
    }

    async fn get(&self, hostname: &str) -> BusResult<Option<Facts>> {
        Ok(
            get_json::<StoredFacts>(&self.store, &format!("facts.{}", sanitize_key(hostname)))
                .await?
                .map(|s| s.facts),
        )
    }

    async fn list(&self) -> BusResult<Vec<(String, Facts)>> {
        let keys = keys_with_prefix(&self.store, "facts.").await?;
        let all: Vec<StoredFacts> = get_many(&self.store, keys).await?;
        Ok(all.into_iter().map(|s| (s.hostname, s.facts)).collect())
    }
}
