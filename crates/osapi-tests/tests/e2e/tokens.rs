//! Token lifetimes: `exp` must be strictly in the future, and a token
//! without `exp` is refused unless the controller allows it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::{self, now, raw_token};

#[tokio::test]
async fn expiry_is_strict_and_required() {
    let stack = common::single().await;
    let key = stack.emb.signing_key().to_string();
    let at = |exp: i64| raw_token(&key, &json!({"roles": ["admin"], "sub": "x", "exp": exp}));

    // Expiring this very second: refused (the clock may tick meanwhile,
    // which only makes it more expired).
    let (status, body) = stack
        .call(Method::GET, "/agent", Some(&at(now())), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = stack
        .call(Method::GET, "/agent", Some(&at(now() + 60)), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // No exp at all: refused by default, with a message that says why.
    let forever = raw_token(&key, &json!({"roles": ["admin"], "sub": "x"}));
    let (status, body) = stack
        .call(Method::GET, "/agent", Some(&forever), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("allow_tokens_without_expiry"),
        "{body}"
    );
}

#[tokio::test]
async fn tokens_without_expiry_only_when_allowed() {
    let stack = common::builder()
        .agent(|a| a, "agent-1")
        .server(|c| c.allow_tokens_without_expiry = true)
        .start()
        .await;
    let key = stack.emb.signing_key().to_string();
    let forever = raw_token(&key, &json!({"roles": ["read"], "sub": "x"}));
    let (status, body) = stack
        .call(Method::GET, "/agent", Some(&forever), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An expired token is still refused.
    let expired = raw_token(
        &key,
        &json!({"roles": ["read"], "sub": "x", "exp": now() - 1}),
    );
    let (status, _) = stack
        .call(Method::GET, "/agent", Some(&expired), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn generated_signing_keys_are_random_hex() {
    let a = osapi_server::auth::random_signing_key().unwrap();
    let b = osapi_server::auth::random_signing_key().unwrap();
    assert_eq!(a.len(), 64);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
}
