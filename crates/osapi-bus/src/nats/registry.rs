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
    /// The revision of each key this process wrote last, with the instance
    /// id it wrote: the next write of the key expects it, and fails if
    /// another process wrote in between. Held through each write, so that
    /// this process's writes (a heartbeat, a state change) go one at a time.
    written: tokio::sync::Mutex<HashMap<String, (u64, Uuid)>>,
    /// How long reading a registration back may take: a server whose
    /// configuration predates agents' right to read their own key answers
    /// nothing, and a heartbeat must not wait a whole request timeout.
    read_back_within: Duration,
    /// Whether a failed read back has been logged.
    read_back_failed: std::sync::atomic::AtomicBool,
    _alive: tokio::sync::watch::Sender<()>,
}

fn agent_key(hostname: &str) -> String {
    format!("agents.{}", sanitize_key(hostname))
}

impl NatsRegistry {
    /// The registry in `store`, whose time to live is the bucket's as the
    /// server holds it (an agent's own `nats.registry.ttl` may differ from
    /// the controllers' that made it), or the configured one for a bucket
    /// that does not expire.
    pub(crate) fn start(conn: Arc<Conn>, store: kv::Store) -> Self {
        let ttl = match store.stream.cached_info().config.max_age {
            Duration::ZERO => conn.config.registry.max_age,
            held => held,
        };
        let (alive, stop) = tokio::sync::watch::channel(());
        NatsRegistry {
            store,
            ttl,
            events: std::sync::OnceLock::new(),
            tracker: std::sync::Mutex::new(Some(stop)),
            written: tokio::sync::Mutex::new(HashMap::new()),
            read_back_within: (ttl / 10).min(conn.config.request_timeout),
            read_back_failed: std::sync::atomic::AtomicBool::new(false),
            _alive: alive,
        }
    }

    /// The revision and instance id of the registration under `key` now;
    /// `None` when there is none, or when it cannot be read in time (logged
    /// once: the server's configuration may not let an agent read its own
    /// registration, see `docs/nats-server.conf`).
    async fn read_back(&self, key: &str) -> Option<(u64, Uuid)> {
        let read = tokio::time::timeout(self.read_back_within, self.store.entry(key)).await;
        let entry = match read {
            Ok(Ok(entry)) => entry?,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {:?}", self.read_back_within),
                };
                if !self
                    .read_back_failed
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(
                        %error,
                        key,
                        "cannot read this agent's registration back, so cannot tell whether another agent \
                         process writes it: does the NATS user have the right to (docs/nats-server.conf)?"
                    );
                }
                return None;
            }
        };
        if entry.operation != kv::Operation::Put {
            return None;
        }
        let registration: AgentRegistration = serde_json::from_slice(&entry.value).ok()?;
        Some((entry.revision, registration.instance_id))
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
        let mut written = self.written.lock().await;
        let mut replaced = None;
        if let Some(&(last, _)) = written.get(&key) {
            match self.store.update(&key, value.clone(), last).await {
                Ok(revision) => {
                    written.insert(key, (revision, registration.instance_id));
                    return Ok(None);
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    // Written since, or expired: by whom? Only a later
                    // revision counts (a replica behind may serve an older).
                    replaced = self
                        .read_back(&key)
                        .await
                        .filter(|(revision, _)| *revision > last)
                        .map(|(_, id)| id)
                        .filter(|id| *id != registration.instance_id);
                }
                Err(e) => return Err(backend(&what, e)),
            }
        }
        let revision = self
            .store
            .put(&key, value)
            .await
            .map_err(|e| backend(&what, e))?;
        written.insert(key, (revision, registration.instance_id));
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
        let written = self.written.lock().await;
        // First as this process last wrote it (no read); if written since
        // (a write of its own that landed unseen, or another process's), as
        // read now.
        if let Some(&(revision, writer)) = written.get(&key)
            && writer == instance_id
        {
            match self.store.purge_expect_revision(&key, Some(revision)).await {
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                done => return done.map_err(|e| backend(&what, e)),
            }
        }
        let Some((revision, _)) = self
            .read_back(&key)
            .await
            .filter(|(_, id)| *id == instance_id)
        else {
            return Ok(());
        };
        match self.store.purge_expect_revision(&key, Some(revision)).await {
            // Written again in between: by another process, whose it is now.
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
