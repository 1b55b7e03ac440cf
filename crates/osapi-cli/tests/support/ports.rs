//! Ports for the processes the tests start (included with `#[path]` by
//! each test target that needs one).

/// A port nothing listens on (the OS picked it, then it was let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port on loopback")
        .local_addr()
        .expect("a bound address")
        .port()
}
