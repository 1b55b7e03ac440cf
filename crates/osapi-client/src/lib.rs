//! Typed async REST client for OSAPI controllers: this project's and
//! upstream's (same paths, bodies and tokens).
//!
//! ```no_run
//! # async fn demo() -> Result<(), osapi_client::ClientError> {
//! use std::time::Duration;
//! use osapi_client::Client;
//! let client = Client::new("http://127.0.0.1:8080", "<token>")?;
//! let job = client.submit("node.hostname.get", serde_json::json!({}), "_any").await?;
//! let done = client.wait_job(job.job_id, Duration::from_secs(30)).await?;
//! println!("{:?}: {:?}", done.status, done.result);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod backoff;
mod error;
mod local;
mod typed;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use osapi_api::agent::{AgentActionResponse, AgentInfo, ListAgentsResponse};
use osapi_api::audit::{AuditEntryResponse, ListAuditResponse};
use osapi_api::error::ErrorResponse;
use osapi_api::file::{FileDeleteResponse, FileInfo, FileListResponse, FileUploadResponse};
use osapi_api::health::{HealthResponse, ReadyResponse, StatusResponse};
use osapi_api::job::{
    CreateJobRequest, CreateJobResponse, JobDetail, JobStatus, ListJobsResponse, QueueStats,
    RetryJobRequest,
};
use osapi_api::node::*;
use osapi_api::ops::ContentType;
use reqwest::header::HeaderValue;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use backoff::Backoff;
pub use error::{ClientError, ErrorSource};
pub use local::{LocalResponse, LocalTransport};
pub use typed::{HostAnswer, OpJob};
pub use wait::WaitPolicy;

/// Result of client calls.
pub type Result<T> = std::result::Result<T, ClientError>;

/// Settings of a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    token: String,
    timeout: Duration,
    connect_timeout: Duration,
    wait: WaitPolicy,
    local: Option<Arc<dyn LocalTransport>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("local", &self.local.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Per-request timeout (default 60 s; long-polls get their wait on top).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Connection timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How [`Client::wait_job`] long-polls and backs off.
    pub fn wait_policy(mut self, policy: WaitPolicy) -> Self {
        self.wait = policy;
        self
    }

    /// Sends every request through `transport` in this process instead of
    /// over HTTP (the URL still names the controller in requests and
    /// errors). The embedded stack provides one.
    pub fn local(mut self, transport: Arc<dyn LocalTransport>) -> Self {
        self.local = Some(transport);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client> {
        let mut base = Url::parse(&self.url).map_err(|e| ClientError::InvalidInput {
            message: format!("invalid controller URL {:?}: {e}", self.url),
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::InvalidInput {
                message: format!("controller URL {:?} must be http:// or https://", self.url),
            });
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token)).map_err(|_| {
            ClientError::InvalidInput {
                message: "token contains characters not allowed in an HTTP header".into(),
            }
        })?;
        auth.set_sensitive(true);
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if self.local.is_some() {
            // Requests never leave the process: no certificate store to
            // load, no proxy to look up.
            http = http.tls_certs_only(Vec::new()).no_proxy();
        }
        let http = http.build().map_err(|e| ClientError::InvalidInput {
            message: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                auth,
                timeout: self.timeout,
                wait: self.wait,
                local: self.local,
            }),
        })
    }
}

/// A client for one controller. Cheap to clone (one shared pointer).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    timeout: Duration,
    wait: WaitPolicy,
    local: Option<Arc<dyn LocalTransport>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("timeout", &self.timeout)
            .field("local", &self.local.is_some())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with default settings. Fails only on an unusable URL.
    pub fn new(url: &str, token: &str) -> Result<Client> {
        Self::builder(url, token).build()
    }

    /// Settings for a client.
    pub fn builder(url: &str, token: &str) -> ClientBuilder {
        ClientBuilder {
            url: url.to_string(),
            token: token.to_string(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            wait: WaitPolicy::default(),
            local: None,
        }
    }

    /// The base URL (with a trailing slash).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.inner.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| ClientError::InvalidInput {
                    message: "controller URL cannot take a path".into(),
                })?;
            path.pop_if_empty();
            for s in segments {
                path.push(s);
            }
        }
        Ok(url)
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        Ok(self
            .inner
            .http
            .request(method, self.url(segments)?)
            .header(reqwest::header::AUTHORIZATION, self.inner.auth.clone())
            .timeout(self.inner.timeout))
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        expect: &[StatusCode],
    ) -> Result<T> {
        let response = self.execute(req).await?;
        decode(response, expect).await
    }

    /// Sends a request over HTTP, or through the local transport.
    async fn execute(&self, req: RequestBuilder) -> Result<Response> {
        match &self.inner.local {
            Some(local) => local::send(local.as_ref(), req).await,
            None => Ok(req.send().await?),
        }
    }

    /// A request without a body.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        expect: &[StatusCode],
    ) -> Result<T> {
        self.send(self.request(method, segments)?, expect).await
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        self.call(Method::GET, segments, &[StatusCode::OK]).await
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
        expect: &[StatusCode],
    ) -> Result<T> {
        self.send(self.request(method, segments)?.json(body), expect)
            .await
    }

    // ---- health ----

    /// `GET /health`.
    pub async fn health(&self) -> Result<HealthResponse> {
        self.get(&["health"]).await
    }

    /// `GET /metrics`: the controller's Prometheus metrics, as text (at the
    /// default `telemetry.metrics.path`, under the client's base URL; the
    /// token goes along, for `telemetry.metrics.auth`).
    pub async fn metrics(&self) -> Result<String> {
        let response = self
            .execute(self.request(Method::GET, &["metrics"])?)
            .await?;
        let body = check(response, &[StatusCode::OK]).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// `GET /health/ready`; a 503 is returned as a `not_ready` body, not an error.
    pub async fn ready(&self) -> Result<ReadyResponse> {
        self.call(
            Method::GET,
            &["health", "ready"],
            &[StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE],
        )
        .await
    }

    /// `GET /health/status`; a 503 is returned as a `degraded` body.
    pub async fn status(&self) -> Result<StatusResponse> {
        self.call(
            Method::GET,
            &["health", "status"],
            &[StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE],
        )
        .await
    }

    // ---- agents ----

    /// `GET /agent`.
    pub async fn agents(&self) -> Result<ListAgentsResponse> {
        self.get(&["agent"]).await
    }

    /// `GET /agent/{hostname}`.
    pub async fn agent(&self, hostname: &str) -> Result<AgentInfo> {
        non_empty("hostname", hostname)?;
        self.get(&["agent", hostname]).await
    }

    /// `POST /agent/{hostname}/drain`.
    pub async fn drain(&self, hostname: &str) -> Result<AgentActionResponse> {
        non_empty("hostname", hostname)?;
        self.call(
            Method::POST,
            &["agent", hostname, "drain"],
            &[StatusCode::OK],
        )
        .await
    }

    /// `POST /agent/{hostname}/undrain`.
    pub async fn undrain(&self, hostname: &str) -> Result<AgentActionResponse> {
        non_empty("hostname", hostname)?;
        self.call(
            Method::POST,
            &["agent", hostname, "undrain"],
            &[StatusCode::OK],
        )
        .await
    }

    // ---- jobs ----

    /// `POST /job`.
    pub async fn create_job(&self, request: &CreateJobRequest) -> Result<CreateJobResponse> {
        non_empty("target", &request.target_hostname)?;
        self.with_body(Method::POST, &["job"], request, &[StatusCode::CREATED])
            .await
    }

    /// `POST /job` from an operation type, its data and a target.
    pub async fn submit(
        &self,
        op_type: &str,
        data: Value,
        target: &str,
    ) -> Result<CreateJobResponse> {
        non_empty("operation type", op_type)?;
        self.create_job(&CreateJobRequest::new(op_type, data, target))
            .await
    }

    /// `GET /job/{id}`.
    pub async fn job(&self, id: Uuid) -> Result<JobDetail> {
        self.get(&["job", &id.to_string()]).await
    }

    /// One long-poll: `GET /job/{id}?wait=…`. Returns when the job is terminal
    /// or the wait ends (servers that ignore `wait` answer at once).
    pub async fn job_wait(&self, id: Uuid, wait: Duration) -> Result<JobDetail> {
        let req = self
            .request(Method::GET, &["job", &id.to_string()])?
            .query(&[("wait", format!("{}ms", wait.as_millis()))])
            .timeout(self.inner.timeout + wait);
        self.send(req, &[StatusCode::OK]).await
    }

    /// Waits until the job is terminal, up to `timeout`, by long-polling
    /// (and polling with jittered back-off against servers that ignore `wait`).
    /// A timeout error carries the last status seen.
    pub async fn wait_job(&self, id: Uuid, timeout: Duration) -> Result<JobDetail> {
        wait::wait_job(self, id, timeout, &self.inner.wait).await
    }

    /// Creates a job and waits for it.
    pub async fn run_job(
        &self,
        request: &CreateJobRequest,
        timeout: Duration,
    ) -> Result<JobDetail> {
        let created = self.create_job(request).await?;
        self.wait_job(created.job_id, timeout).await
    }

    /// `GET /job` (newest first; `limit` 0 = all).
    pub async fn jobs(
        &self,
        status: Option<JobStatus>,
        limit: usize,
        offset: usize,
    ) -> Result<ListJobsResponse> {
        let mut req = self
            .request(Method::GET, &["job"])?
            .query(&[("limit", limit), ("offset", offset)]);
        if let Some(s) = status {
            req = req.query(&[("status", s.as_str())]);
        }
        self.send(req, &[StatusCode::OK]).await
    }

    /// `GET /job/status`.
    pub async fn job_stats(&self) -> Result<QueueStats> {
        self.get(&["job", "status"]).await
    }

    /// `DELETE /job/{id}`.
    pub async fn delete_job(&self, id: Uuid) -> Result<()> {
        let response = self
            .execute(self.request(Method::DELETE, &["job", &id.to_string()])?)
            .await?;
        check(response, &[StatusCode::NO_CONTENT, StatusCode::OK])
            .await
            .map(|_| ())
    }

    /// `POST /job/{id}/retry`, optionally on another target.
    pub async fn retry_job(&self, id: Uuid, target: Option<&str>) -> Result<CreateJobResponse> {
        let body = RetryJobRequest {
            target_hostname: target.map(str::to_string),
        };
        self.with_body(
            Method::POST,
            &["job", &id.to_string(), "retry"],
            &body,
            &[StatusCode::CREATED],
        )
        .await
    }

    // ---- files ----

    /// `POST /file` (multipart). Without `force`, an object with other content is a conflict.
    pub async fn upload_file(
        &self,
        name: &str,
        content_type: ContentType,
        data: impl Into<Bytes>,
        force: bool,
    ) -> Result<FileUploadResponse> {
        non_empty("file name", name)?;
        let data: Bytes = data.into();
        if data.is_empty() {
            return Err(ClientError::InvalidInput {
                message: format!("file {name:?} is empty; the file store rejects empty files"),
            });
        }
        let part = reqwest::multipart::Part::stream(data).file_name(name.to_string());
        let form = reqwest::multipart::Form::new()
            .text("name", name.to_string())
            .text("content_type", content_type.as_str())
            .part("file", part);
        let mut req = self.request(Method::POST, &["file"])?.multipart(form);
        if force {
            req = req.query(&[("force", "true")]);
        }
        self.send(req, &[StatusCode::CREATED]).await
    }

    /// `GET /file`.
    pub async fn files(&self) -> Result<FileListResponse> {
        self.get(&["file"]).await
    }

    /// `GET /file/{name}`.
    pub async fn file(&self, name: &str) -> Result<FileInfo> {
        non_empty("file name", name)?;
        self.get(&["file", name]).await
    }

    /// `DELETE /file/{name}`.
    pub async fn delete_file(&self, name: &str) -> Result<FileDeleteResponse> {
        non_empty("file name", name)?;
        self.call(Method::DELETE, &["file", name], &[StatusCode::OK])
            .await
    }

    /// Whether `data` differs from the stored object `name` (true when absent).
    /// Returns the local SHA-256 too.
    pub async fn file_changed(&self, name: &str, data: &[u8]) -> Result<(bool, String)> {
        let local = hex::encode(Sha256::digest(data));
        match self.file(name).await {
            Ok(info) => Ok((info.sha256 != local, local)),
            Err(ClientError::NotFound { .. }) => Ok((true, local)),
            Err(e) => Err(e),
        }
    }

    // ---- node endpoints ----

    /// `GET /node/{target}`.
    pub async fn node_status(&self, target: &str) -> Result<Collection<NodeStatusItem>> {
        self.node_get(target, &[]).await
    }
    /// `GET /node/{target}/hostname`.
    pub async fn node_hostname(&self, target: &str) -> Result<Collection<HostnameItem>> {
        self.node_get(target, &["hostname"]).await
    }
    /// `GET /node/{target}/disk`.
    pub async fn node_disk(&self, target: &str) -> Result<Collection<DiskItem>> {
        self.node_get(target, &["disk"]).await
    }
    /// `GET /node/{target}/memory`.
    pub async fn node_memory(&self, target: &str) -> Result<Collection<MemoryItem>> {
        self.node_get(target, &["memory"]).await
    }
    /// `GET /node/{target}/load`.
    pub async fn node_load(&self, target: &str) -> Result<Collection<LoadItem>> {
        self.node_get(target, &["load"]).await
    }
    /// `GET /node/{target}/os`.
    pub async fn node_os(&self, target: &str) -> Result<Collection<OsInfoItem>> {
        self.node_get(target, &["os"]).await
    }
    /// `GET /node/{target}/uptime`.
    pub async fn node_uptime(&self, target: &str) -> Result<Collection<UptimeItem>> {
        self.node_get(target, &["uptime"]).await
    }
    /// `GET /node/{target}/network/dns/{interface}`.
    pub async fn node_dns(
        &self,
        target: &str,
        interface: &str,
    ) -> Result<Collection<DnsConfigItem>> {
        non_empty("interface", interface)?;
        self.node_get(target, &["network", "dns", interface]).await
    }

    async fn node_get<T: DeserializeOwned>(&self, target: &str, rest: &[&str]) -> Result<T> {
        self.get(&node_path(target, rest)?).await
    }

    async fn node_send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        target: &str,
        rest: &[&str],
        body: &B,
        expect: StatusCode,
    ) -> Result<T> {
        let segments = node_path(target, rest)?;
        // Synchronous endpoints may wait for a command's whole run.
        let req = self
            .request(method, &segments)?
            .timeout(self.inner.timeout.max(Duration::from_secs(330)))
            .json(body);
        self.send(req, &[expect]).await
    }

    /// `POST /node/{target}/network/ping`.
    pub async fn node_ping(&self, target: &str, address: &str) -> Result<Collection<PingItem>> {
        let body = PingRequest {
            address: address.to_string(),
        };
        self.node_send(
            Method::POST,
            target,
            &["network", "ping"],
            &body,
            StatusCode::OK,
        )
        .await
    }
    /// `PUT /node/{target}/network/dns`.
    pub async fn node_dns_update(
        &self,
        target: &str,
        request: &DnsUpdateRequest,
    ) -> Result<Collection<DnsUpdateItem>> {
        self.node_send(
            Method::PUT,
            target,
            &["network", "dns"],
            request,
            StatusCode::ACCEPTED,
        )
        .await
    }
    /// `POST /node/{target}/command/exec`.
    pub async fn node_exec(
        &self,
        target: &str,
        request: &CommandExecRequest,
    ) -> Result<Collection<CommandItem>> {
        self.node_send(
            Method::POST,
            target,
            &["command", "exec"],
            request,
            StatusCode::ACCEPTED,
        )
        .await
    }
    /// `POST /node/{target}/command/shell`.
    pub async fn node_shell(
        &self,
        target: &str,
        request: &CommandShellRequest,
    ) -> Result<Collection<CommandItem>> {
        self.node_send(
            Method::POST,
            target,
            &["command", "shell"],
            request,
            StatusCode::ACCEPTED,
        )
        .await
    }
    /// `POST /node/{target}/file/deploy`.
    pub async fn node_file_deploy(
        &self,
        target: &str,
        request: &FileDeployRequest,
    ) -> Result<FileDeployResponse> {
        self.node_send(
            Method::POST,
            target,
            &["file", "deploy"],
            request,
            StatusCode::ACCEPTED,
        )
        .await
    }
    /// `POST /node/{target}/file/status`.
    pub async fn node_file_status(&self, target: &str, path: &str) -> Result<FileStatusResponse> {
        let body = FileStatusRequest {
            path: path.to_string(),
        };
        self.node_send(
            Method::POST,
            target,
            &["file", "status"],
            &body,
            StatusCode::OK,
        )
        .await
    }

    // ---- audit ----

    /// `GET /audit` (limit 1–100).
    pub async fn audit(&self, limit: usize, offset: usize) -> Result<ListAuditResponse> {
        let req = self
            .request(Method::GET, &["audit"])?
            .query(&[("limit", limit), ("offset", offset)]);
        self.send(req, &[StatusCode::OK]).await
    }
    /// `GET /audit/{id}`.
    pub async fn audit_entry(&self, id: Uuid) -> Result<AuditEntryResponse> {
        self.get(&["audit", &id.to_string()]).await
    }
    /// `GET /audit/export`.
    pub async fn audit_export(&self) -> Result<ListAuditResponse> {
        self.get(&["audit", "export"]).await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Result<Value> {
        self.get(&["openapi.json"]).await
    }
}

/// `node/{target}/{rest…}`, refusing an empty target.
fn node_path<'a>(target: &'a str, rest: &[&'a str]) -> Result<Vec<&'a str>> {
    non_empty("target", target)?;
    let mut segments = vec!["node", target];
    segments.extend_from_slice(rest);
    Ok(segments)
}

fn non_empty(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(ClientError::InvalidInput {
            message: format!("{what} must not be empty"),
        });
    }
    Ok(())
}

/// Reads an error message from a body: `error`, else `message`, else the text.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(e) = serde_json::from_slice::<ErrorResponse>(body)
        && !e.text().is_empty()
    {
        return e.text().to_string();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("unexpected status {}", status.as_u16())
    } else {
        text.chars().take(500).collect()
    }
}

async fn check(response: Response, expect: &[StatusCode]) -> Result<Bytes> {
    let status = response.status();
    let body = response.bytes().await?;
    if expect.contains(&status) {
        return Ok(body);
    }
    Err(ClientError::from_status(
        status.as_u16(),
        error_message(status, &body),
    ))
}

async fn decode<T: DeserializeOwned>(response: Response, expect: &[StatusCode]) -> Result<T> {
    let status = response.status();
    let body = check(response, expect).await?;
    if body.is_empty() {
        return Err(ClientError::UnexpectedStatus {
            status: status.as_u16(),
            message: "nil response body".into(),
        });
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
        status: status.as_u16(),
        message: format!("invalid response body: {e}"),
        source: std::sync::Arc::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_base_path_and_encode_segments() {
        let c = Client::new("http://h:8080/api", "t").unwrap();
        assert_eq!(
            c.url(&["job", "x"]).unwrap().as_str(),
            "http://h:8080/api/job/x"
        );
        assert_eq!(
            c.url(&["file", "my file.conf"]).unwrap().as_str(),
            "http://h:8080/api/file/my%20file.conf"
        );
        let c = Client::new("http://h:8080/", "t").unwrap();
        assert_eq!(
            c.url(&["node", "_all", "hostname"]).unwrap().as_str(),
            "http://h:8080/node/_all/hostname"
        );
        assert_eq!(
            c.url(&["node", "a/b"]).unwrap().as_str(),
            "http://h:8080/node/a%2Fb"
        );
    }

    #[test]
    fn bad_urls_are_rejected() {
        assert!(matches!(
            Client::new("not a url", "t"),
            Err(ClientError::InvalidInput { .. })
        ));
        assert!(matches!(
            Client::new("ftp://h/", "t"),
            Err(ClientError::InvalidInput { .. })
        ));
    }

    #[test]
    fn error_messages_from_either_envelope() {
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, br#"{"error":"bad target"}"#),
            "bad target"
        );
        assert_eq!(
            error_message(StatusCode::NOT_FOUND, br#"{"message":"Not Found"}"#),
            "Not Found"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b""),
            "unexpected status 502"
        );
        let e = ClientError::from_status(403, "no".into());
        assert_eq!(e.to_string(), "api error (status 403): no");
        assert_eq!(e.status(), Some(403));
    }
}
