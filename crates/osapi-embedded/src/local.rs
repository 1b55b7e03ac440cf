//! The embedded controller answered in process: its own router (every
//! route, authentication, audit and check) as an
//! [`osapi_client::LocalTransport`], so that a client in the same process
//! skips loopback TCP and HTTP parsing.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use osapi_client::{LocalResponse, LocalTransport};
use tower::ServiceExt;

/// The controller's router, called in process.
pub(crate) struct RouterTransport {
    pub(crate) router: Router,
}

/// The peer address in-process requests carry (audit entries show it).
const IN_PROCESS_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl LocalTransport for RouterTransport {
    fn call(&self, request: http::Request<Bytes>) -> LocalResponse {
        let router = self.router.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut request = http::Request::from_parts(parts, Body::from(body));
            request
                .extensions_mut()
                .insert(ConnectInfo(IN_PROCESS_PEER));
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let (parts, body) = response.into_parts();
            // A response body that fails half-way (none of ours do) is cut,
            // as a broken connection would cut it.
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            http::Response::from_parts(parts, bytes)
        })
    }
}
