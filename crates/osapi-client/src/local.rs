//! Controllers reached without a socket: a [`LocalTransport`] answers the
//! client's requests in this process (the embedded stack hands the
//! controller's own router to the client this way). Requests are the same
//! HTTP requests, with the same authentication, checks and audit; only the
//! TCP connection and the HTTP parsing are left out.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use reqwest::{RequestBuilder, Response};

use crate::{ClientError, Result};

/// A future answering one request.
pub type LocalResponse = Pin<Box<dyn Future<Output = http::Response<Bytes>> + Send>>;

/// Answers a client's requests in process.
///
/// ```
/// use bytes::Bytes;
/// use osapi_client::{Client, LocalResponse, LocalTransport};
///
/// struct Healthy;
/// impl LocalTransport for Healthy {
///     fn call(&self, _request: http::Request<Bytes>) -> LocalResponse {
///         Box::pin(async { http::Response::new(Bytes::from_static(br#"{"status":"ok"}"#)) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = Client::builder("http://in-process.invalid", "token")
///     .local(std::sync::Arc::new(Healthy))
///     .build()
///     .unwrap();
/// assert_eq!(client.health().await.unwrap().status, "ok");
/// # }
/// ```
pub trait LocalTransport: Send + Sync + 'static {
    /// Answers `request` (its URI is the full URL the client built).
    fn call(&self, request: http::Request<Bytes>) -> LocalResponse;
}

/// Sends `req` through `transport`, honouring its timeout.
pub(crate) async fn send(transport: &dyn LocalTransport, req: RequestBuilder) -> Result<Response> {
    let req = req.build()?;
    let timeout = req.timeout().copied();
    let req: http::Request<reqwest::Body> = req.try_into()?;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| ClientError::InvalidInput {
            message: format!("cannot read the request body: {e}"),
        })?
        .to_bytes();
    let answer = transport.call(http::Request::from_parts(parts, body));
    let response = match timeout {
        Some(limit) => tokio::time::timeout(limit, answer)
            .await
            .map_err(|_| timed_out(limit))?,
        None => answer.await,
    };
    Ok(Response::from(response))
}

fn timed_out(limit: Duration) -> ClientError {
    ClientError::Timeout {
        message: format!(
            "no answer from the in-process controller within {:.1}s",
            limit.as_secs_f64()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::Client;

    /// Never answers.
    struct Silent;
    impl LocalTransport for Silent {
        fn call(&self, _request: http::Request<Bytes>) -> LocalResponse {
            Box::pin(std::future::pending())
        }
    }

    /// Answers with what it was sent, as JSON.
    struct Echo;
    impl LocalTransport for Echo {
        fn call(&self, request: http::Request<Bytes>) -> LocalResponse {
            Box::pin(async move {
                let body = serde_json::json!({
                    "status": format!("{} {} {}", request.method(), request.uri(),
                        request.headers()["authorization"].to_str().unwrap_or_default()),
                });
                http::Response::new(Bytes::from(body.to_string()))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_transport_times_out_like_a_silent_server() {
        let client = Client::builder("http://127.0.0.1:1", "t")
            .timeout(Duration::from_millis(200))
            .local(Arc::new(Silent))
            .build()
            .unwrap();
        let err = client.health().await.unwrap_err();
        assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn requests_keep_their_method_url_and_token() {
        let client = Client::builder("http://controller.example:8080/api", "secret")
            .local(Arc::new(Echo))
            .build()
            .unwrap();
        let h = client.health().await.unwrap();
        assert_eq!(
            h.status,
            "GET http://controller.example:8080/api/health Bearer secret"
        );
    }
}
