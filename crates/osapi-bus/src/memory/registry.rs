//! In-memory agent registry and facts, both expiring after a TTL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use osapi_api::records::{AgentRegistration, Facts};
use osapi_api::target::sanitize_key;
use tokio::sync::broadcast;
use tokio::time::Instant;
use uuid::Uuid;

use crate::lock;
use crate::{BusResult, FactStore, Registry, RegistryEvent};

struct Entry {
    registration: AgentRegistration,
    expires: Instant,
}

/// Agent registrations held in memory.
pub struct MemoryRegistry {
    entries: Mutex<BTreeMap<String, Entry>>,
    ttl: Duration,
    events: broadcast::Sender<RegistryEvent>,
}

impl MemoryRegistry {
    /// An empty registry whose entries live `ttl` without a heartbeat.
    pub fn new(ttl: Duration) -> Self {
        MemoryRegistry {
            entries: Mutex::new(BTreeMap::new()),
            ttl,
            events: broadcast::channel(1024).0,
        }
    }

    /// Removes expired entries and announces them.
    pub fn reap(&self) {
        let now = Instant::now();
        let mut gone = Vec::new();
        lock(&self.entries).retain(|_, e| {
            let alive = e.expires > now;
            if !alive {
                gone.push(e.registration.hostname.clone());
            }
            alive
        });
        for hostname in gone {
            let _ = self.events.send(RegistryEvent::Left { hostname });
        }
    }

    fn reap_interval(&self) -> Duration {
        (self.ttl / 20).clamp(Duration::from_millis(10), Duration::from_millis(500))
    }
}

/// Starts the task that expires registrations on time (when a runtime is present).
pub(super) fn spawn_reaper(registry: &Arc<MemoryRegistry>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<MemoryRegistry> = Arc::downgrade(registry);
    let interval = registry.reap_interval();
    handle.spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            match weak.upgrade() {
                Some(r) => r.reap(),
                None => break,
            }
        }
    });
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn put(&self, registration: AgentRegistration) -> BusResult<Option<Uuid>> {
        let key = sanitize_key(&registration.hostname);
        let (joined, replaced) = {
            let mut entries = lock(&self.entries);
            let now = Instant::now();
            let replaced = entries
                .get(&key)
                .filter(|old| old.expires > now)
                .map(|old| old.registration.instance_id)
                .filter(|id| *id != registration.instance_id);
            let is_new =
                replaced.is_some() || entries.get(&key).is_none_or(|old| old.expires <= now);
            let event = is_new.then(|| RegistryEvent::Joined {
                hostname: registration.hostname.clone(),
                instance_id: registration.instance_id,
            });
            entries.insert(
                key,
                Entry {
                    registration,
                    expires: now + self.ttl,
                },
            );
            (event, replaced)
        };
        if let Some(event) = joined {
            let _ = self.events.send(event);
        }
        Ok(replaced)
    }

    async fn get(&self, hostname: &str) -> BusResult<Option<AgentRegistration>> {
        let now = Instant::now();
        Ok(lock(&self.entries)
            .get(&sanitize_key(hostname))
            .filter(|e| e.expires > now)
            .map(|e| e.registration.clone()))
    }

    async fn list(&self) -> BusResult<Vec<AgentRegistration>> {
        let now = Instant::now();
        Ok(lock(&self.entries)
            .values()
            .filter(|e| e.expires > now)
            .map(|e| e.registration.clone())
            .collect())
    }

    async fn remove(&self, hostname: &str, instance_id: Uuid) -> BusResult<()> {
        let removed = {
            let mut entries = lock(&self.entries);
            let key = sanitize_key(hostname);
            let ours = entries
                .get(&key)
                .is_some_and(|e| e.registration.instance_id == instance_id);
            if ours { entries.remove(&key) } else { None }
        };
        if let Some(e) = removed {
            let _ = self.events.send(RegistryEvent::Left {
                hostname: e.registration.hostname,
            });
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<RegistryEvent> {
        self.events.subscribe()
    }

    fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Agent facts held in memory.
pub struct MemoryFactStore {
    entries: Mutex<BTreeMap<String, (String, Facts, Instant)>>,
    ttl: Duration,
}

impl MemoryFactStore {
    /// An empty store whose entries live `ttl` without a refresh.
    pub fn new(ttl: Duration) -> Self {
        MemoryFactStore {
            entries: Mutex::new(BTreeMap::new()),
            ttl,
        }
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        lock(&self.entries).values().filter(|e| e.2 > now).count()
    }

    /// True when no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl FactStore for MemoryFactStore {
    async fn put(&self, hostname: &str, facts: Facts) -> BusResult<()> {
        let expires = Instant::now() + self.ttl;
        lock(&self.entries).insert(
            sanitize_key(hostname),
            (hostname.to_string(), facts, expires),
        );
        Ok(())
    }

    async fn get(&self, hostname: &str) -> BusResult<Option<Facts>> {
        let now = Instant::now();
        Ok(lock(&self.entries)
            .get(&sanitize_key(hostname))
            .filter(|e| e.2 > now)
            .map(|e| e.1.clone()))
    }

    async fn list(&self) -> BusResult<Vec<(String, Facts)>> {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        entries.retain(|_, e| e.2 > now);
        Ok(entries
            .values()
            .map(|e| (e.0.clone(), e.1.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osapi_api::agent::AgentState;
    use time::OffsetDateTime;
    use uuid::Uuid;

    fn reg(host: &str) -> AgentRegistration {
        AgentRegistration {
            hostname: host.into(),
            instance_id: Uuid::new_v4(),
            labels: Default::default(),
            registered_at: OffsetDateTime::now_utc(),
            started_at: OffsetDateTime::now_utc(),
            os_info: None,
            uptime_seconds: 0,
            load: None,
            memory: None,
            conditions: vec![],
            state: AgentState::Ready,
            jobs_in_flight: 0,
            agent_version: "test".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_and_announce_leaving() {
        let r = Arc::new(MemoryRegistry::new(Duration::from_secs(1)));
        spawn_reaper(&r);
        let mut rx = r.subscribe();
        let a = reg("web-01");
        let instance = a.instance_id;
        r.put(a).await.unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            RegistryEvent::Joined {
                hostname: "web-01".into(),
                instance_id: instance
            }
        );
        assert!(r.get("web-01").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert!(r.get("web-01").await.unwrap().is_none());
        assert_eq!(
            rx.recv().await.unwrap(),
            RegistryEvent::Left {
                hostname: "web-01".into()
            }
        );
    }

    #[tokio::test]
    async fn heartbeat_of_same_instance_is_not_a_join() {
        let r = MemoryRegistry::new(Duration::from_secs(30));
        let mut rx = r.subscribe();
        let a = reg("web-01");
        r.put(a.clone()).await.unwrap();
        r.put(a.clone()).await.unwrap();
        let mut restarted = a.clone();
        restarted.instance_id = Uuid::new_v4();
        r.put(restarted).await.unwrap();
        assert!(matches!(
            rx.recv().await.unwrap(),
            RegistryEvent::Joined { .. }
        ));
        assert!(matches!(
            rx.recv().await.unwrap(),
            RegistryEvent::Joined { .. }
        ));
        assert!(rx.try_recv().is_err(), "exactly two joins");
    }

    #[tokio::test]
    async fn a_namesake_is_told_and_its_registration_never_removed() {
        let r = MemoryRegistry::new(Duration::from_secs(30));
        let a = reg("web-01");
        let mut b = a.clone();
        b.instance_id = Uuid::new_v4();
        assert_eq!(r.put(a.clone()).await.unwrap(), None);
        assert_eq!(r.put(a.clone()).await.unwrap(), None, "its own heartbeat");
        assert_eq!(r.put(b.clone()).await.unwrap(), Some(a.instance_id));
        assert_eq!(r.put(a.clone()).await.unwrap(), Some(b.instance_id));
        assert_eq!(r.put(b.clone()).await.unwrap(), Some(a.instance_id));
        // a stops: b's registration is not a's to remove.
        r.remove("web-01", a.instance_id).await.unwrap();
        let now = r.get("web-01").await.unwrap().map(|x| x.instance_id);
        assert_eq!(now, Some(b.instance_id));
        r.remove("web-01", b.instance_id).await.unwrap();
        assert!(r.get("web-01").await.unwrap().is_none());
    }
}
