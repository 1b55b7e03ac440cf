//! Browsers' cross-origin access (`api.server.security.cors.allow_origins`):
//! a preflight is answered before authentication; listed origins are
//! allowed and others are not; no list allows any origin, as upstream; an
//! origin that is not one is a startup error.

use reqwest::{Method, StatusCode};

use crate::common;

/// Sends a preflight for `POST /job` from `origin`; returns its status and
/// the allowed origin it names, if any.
async fn preflight(stack: &common::Stack, origin: &str) -> (StatusCode, Option<String>) {
    let resp = stack
        .http
        .request(Method::OPTIONS, stack.url("/job"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    let allowed = resp
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status(), allowed)
}

#[tokio::test]
async fn listed_origins_only_and_preflight_before_auth() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .server(|c| c.cors_allow_origins = vec!["https://ops.example".into()])
        .start()
        .await;
    // No token: the preflight is still answered, and allows the origin.
    let (status, allowed) = preflight(&stack, "https://ops.example").await;
    assert!(status.is_success(), "{status}");
    assert_eq!(allowed.as_deref(), Some("https://ops.example"));
    // Another origin gets no permission.
    let (_, allowed) = preflight(&stack, "https://evil.example").await;
    assert_eq!(allowed, None);
    // A real request from the listed origin is still authenticated, and
    // its answer (a 401) carries the header the browser needs to read it.
    let resp = stack
        .http
        .get(stack.url("/agent"))
        .header("origin", "https://ops.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://ops.example"
    );
}

#[tokio::test]
async fn no_list_allows_any_origin_as_upstream() {
    let stack = common::single().await;
    let (status, allowed) = preflight(&stack, "https://anywhere.example").await;
    assert!(status.is_success(), "{status}");
    assert_eq!(allowed.as_deref(), Some("*"));
}

#[test]
fn an_origin_that_is_not_one_is_a_startup_error() {
    for bad in [
        "ops.example",
        "https://ops.example/path",
        "ftp://x",
        "https://",
    ] {
        let config = osapi_server::ServerConfig {
            signing_key: "k".into(),
            cors_allow_origins: vec![bad.into()],
            ..Default::default()
        };
        let err = config.validate().unwrap_err();
        assert!(
            err.contains("api.server.security.cors.allow_origins"),
            "{bad}: {err}"
        );
    }
    let fine = osapi_server::ServerConfig {
        signing_key: "k".into(),
        cors_allow_origins: vec!["*".into(), "http://localhost:3001".into()],
        ..Default::default()
    };
    assert!(fine.validate().is_ok());
}
