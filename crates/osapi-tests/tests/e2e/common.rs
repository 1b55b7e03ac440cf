//! Shared test fixtures: start a stack, raw HTTP helpers, token crafting.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use osapi_agent::AgentConfig;
use osapi_agent::providers::{ProviderConfig, ResolvectlMode};
use osapi_api::job::CreateJobRequest;
use osapi_client::Client;
use osapi_embedded::Embedded;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

/// A running stack with its own temp dir.
pub struct Stack {
    pub emb: Embedded,
    pub client: Client,
    pub http: reqwest::Client,
    pub dir: TempDir,
}

const RESOLV: &str =
    "nameserver 10.0.0.53\nnameserver 10.0.0.54\nsearch corp.example\noptions ndots:2\n";

/// Agent settings that never touch the machine's own resolv.conf.
pub fn agent(name: &str, dir: &TempDir) -> AgentConfig {
    let resolv = dir.path().join(format!("resolv-{name}.conf"));
    std::fs::write(&resolv, RESOLV).unwrap();
    let mut c = AgentConfig::named(name);
    c.providers = ProviderConfig {
        resolv_conf: resolv,
        resolvectl: ResolvectlMode::Never,
        ..ProviderConfig::default()
    };
    c
}

type Tweak<T> = Box<dyn FnOnce(&mut T)>;

pub struct StackBuilder {
    agents: Vec<AgentConfig>,
    ttl: Option<Duration>,
    upload_limit: Option<usize>,
    server: Vec<Tweak<osapi_server::ServerConfig>>,
    bus: Vec<Tweak<osapi_bus::memory::MemoryBusConfig>>,
    verify: bool,
    dir: TempDir,
}

impl StackBuilder {
    pub fn agent(mut self, f: impl FnOnce(AgentConfig) -> AgentConfig, name: &str) -> Self {
        let c = agent(name, &self.dir);
        self.agents.push(f(c));
        self
    }
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    pub fn upload_limit(mut self, bytes: usize) -> Self {
        self.upload_limit = Some(bytes);
        self
    }
    /// Adjusts a controller setting.
    pub fn server(mut self, f: impl FnOnce(&mut osapi_server::ServerConfig) + 'static) -> Self {
        self.server.push(Box::new(f));
        self
    }
    /// Agents check job signatures.
    pub fn verify_signatures(mut self) -> Self {
        self.verify = true;
        self
    }
    /// Adjusts a bus setting.
    pub fn bus(
        mut self,
        f: impl FnOnce(&mut osapi_bus::memory::MemoryBusConfig) + 'static,
    ) -> Self {
        self.bus.push(Box::new(f));
        self
    }
    pub async fn start(self) -> Stack {
        // Every agent here gets its own temp paths (see `agent`), and tests
        // read deployed files where they asked them to be.
        let mut b = Embedded::builder().real_host();
        for a in self.agents {
            b = b.agent(a);
        }
        if let Some(ttl) = self.ttl {
            b = b.registry_ttl(ttl).heartbeat_interval(ttl / 5);
        }
        if let Some(limit) = self.upload_limit {
            b = b.server_config(|c| c.max_upload_bytes = limit);
        }
        for f in self.server {
            b = b.server_config(f);
        }
        for f in self.bus {
            b = b.bus_config(f);
        }
        b = b.verify_signatures(self.verify);
        let emb = b.start().await.expect("embedded stack starts");
        let client = Client::new(emb.url(), emb.token()).unwrap();
        Stack {
            emb,
            client,
            http: reqwest::Client::new(),
            dir: self.dir,
        }
    }
}

pub fn builder() -> StackBuilder {
    StackBuilder {
        agents: Vec::new(),
        ttl: None,
        upload_limit: None,
        server: Vec::new(),
        bus: Vec::new(),
        verify: false,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// One agent named `agent-1`.
pub async fn single() -> Stack {
    builder().agent(|a| a, "agent-1").start().await
}

/// Three agents with labels and custom facts.
pub async fn fleet() -> Stack {
    builder()
        .agent(
            |a| {
                a.label("role", "web")
                    .label("group", "web.dev.us-east")
                    .fact("env", "prod")
            },
            "web-01",
        )
        .agent(
            |a| {
                a.label("role", "web")
                    .label("group", "web.prod")
                    .fact("env", "staging")
            },
            "web-02",
        )
        .agent(
            |a| {
                a.label("role", "db")
                    .label("group", "db.prod")
                    .fact("env", "prod")
            },
            "db-01",
        )
        .start()
        .await
}

impl Stack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emb.url())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Any request; returns status and JSON body (Null when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        status_and_json(req.send().await.expect("request sent")).await
    }

    /// A request with the admin token.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(method, path, Some(self.emb.token()), body).await
    }

    /// A raw body with a content type and the admin token.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.emb.token())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        status_and_json(resp).await
    }

    /// Creates a job and waits for it to end.
    pub async fn run_job(&self, op: &str, data: Value, target: &str) -> osapi_api::job::JobDetail {
        self.client
            .run_job(
                &CreateJobRequest::new(op, data, target),
                Duration::from_secs(30),
            )
            .await
            .expect("job ends")
    }
}

/// The status and JSON body of a response (Null when empty or not JSON).
async fn status_and_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.bytes().await.expect("response body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A token with arbitrary claims, signed with `key` (HS256); an hour of
/// validity is added when the claims have no `exp`.
pub fn token_with(key: &str, mut claims: Value) -> String {
    if let Some(map) = claims.as_object_mut() {
        map.entry("exp").or_insert(serde_json::json!(now() + 3600));
    }
    raw_token(key, &claims)
}

/// A token with exactly these claims, signed with `key` (HS256).
pub fn raw_token(key: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// An unsigned `alg: none` token.
pub fn alg_none_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(br#"{"roles":["admin"],"sub":"mallory"}"#);
    format!("{header}.{claims}.")
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The typed `result` of a unicast job.
pub fn decode<T: serde::de::DeserializeOwned>(d: &osapi_api::job::JobDetail) -> T {
    serde_json::from_value(d.result.clone().expect("result")).expect("typed result")
}
