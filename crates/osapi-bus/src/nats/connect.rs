//! How a process reaches NATS: its credentials (user and password, nkey,
//! a `.creds` file or a token), TLS (server verification against a CA file,
//! optionally a client certificate), a private inbox prefix, and the first
//! connection, whose failures say what is wrong instead of retrying a bad
//! password or certificate until a timeout. Secrets never reach a log line
//! or an error message.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions};

use crate::{BusError, BusResult};

/// Credentials presented to NATS.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum NatsAuth {
    /// No credentials (a laptop, or a server on a private network).
    #[default]
    None,
    /// User and password (upstream's `user_pass`).
    UserPass {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An nkey seed (upstream's `nkey`; `SU…`).
    Nkey {
        /// The seed.
        seed: String,
    },
    /// A NATS `.creds` file: user JWT and nkey seed (operator mode).
    Creds {
        /// Path of the file.
        path: PathBuf,
    },
    /// A token.
    Token {
        /// The token.
        token: String,
    },
}

impl NatsAuth {
    /// The type as the configuration names it.
    pub fn kind(&self) -> &'static str {
        match self {
            NatsAuth::None => "none",
            NatsAuth::UserPass { .. } => "user_pass",
            NatsAuth::Nkey { .. } => "nkey",
            NatsAuth::Creds { .. } => "creds",
            NatsAuth::Token { .. } => "token",
        }
    }
}

impl fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret itself.
        match self {
            NatsAuth::UserPass { username, .. } => write!(f, "user_pass({username})"),
            NatsAuth::Creds { path } => write!(f, "creds({})", path.display()),
            other => f.write_str(other.kind()),
        }
    }
}

/// TLS to NATS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatsTls {
    /// CA certificates the server's certificate must chain to (PEM); the
    /// system's roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for servers that verify clients.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
}

/// What a connection needs besides the URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NatsSecurity {
    /// Credentials.
    pub auth: NatsAuth,
    /// TLS; `None` for plain TCP.
    pub tls: Option<NatsTls>,
    /// Prefix of reply subjects (`_INBOX` when `None`): a private one lets
    /// the server allow a client only its own replies.
    pub inbox_prefix: Option<String>,
}

/// Pause between attempts while the server cannot be reached.
const RETRY: Duration = Duration::from_millis(250);

async fn options(name: &str, security: &NatsSecurity) -> BusResult<ConnectOptions> {
    let mut o = ConnectOptions::new()
        .name(name)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2));
    o = match &security.auth {
        NatsAuth::None => o,
        NatsAuth::UserPass { username, password } => {
            o.user_and_password(username.clone(), password.clone())
        }
        NatsAuth::Nkey { seed } => o.nkey(seed.clone()),
        NatsAuth::Token { token } => o.token(token.clone()),
        NatsAuth::Creds { path } => o.credentials_file(path).await.map_err(|e| {
            BusError::Unavailable(format!(
                "cannot read the NATS credentials file {}: {}",
                path.display(),
                e.kind()
            ))
        })?,
    };
    if let Some(tls) = &security.tls {
        o = o.require_tls(true);
        if let Some(ca) = &tls.ca_file {
            o = o.add_root_certificates(ca.clone());
        }
        match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => o = o.add_client_certificate(cert.clone(), key.clone()),
            (None, None) => {}
            _ => {
                return Err(BusError::Unavailable(
                    "NATS TLS: cert_file and key_file go together (a client certificate needs its key)"
                        .into(),
                ));
            }
        }
    }
    if let Some(prefix) = &security.inbox_prefix {
        o = o.custom_inbox_prefix(prefix);
    }
    Ok(o)
}

/// Connects to `url` (retrying while the server cannot be reached, up to
/// `timeout`); a refused credential or a failed TLS handshake is an error at
/// once, naming what to check. Later disconnections are healed in the
/// background.
pub(crate) async fn connect(
    url: &str,
    name: &str,
    security: &NatsSecurity,
    timeout: Duration,
) -> BusResult<async_nats::Client> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = options(name, security).await?.connect(url).await;
        let e = match attempt {
            Ok(client) => return Ok(client),
            Err(e) => e,
        };
        // rustls reports a rejected certificate as an I/O error.
        let text = chain(&e);
        let tls_failed = e.kind() == ConnectErrorKind::Tls
            || (security.tls.is_some()
                && ["certificate", "handshake", "tls"]
                    .iter()
                    .any(|w| text.to_ascii_lowercase().contains(w)));
        match e.kind() {
            _ if tls_failed => {
                return Err(BusError::Unavailable(format!(
                    "TLS with NATS at {url} failed: {text} (is the server's certificate signed by \
                     the configured tls.ca_file, and issued for this host name?)"
                )));
            }
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                return Err(BusError::Unavailable(format!(
                    "NATS at {url} refused the credentials (auth type {}): check the user, \
                     password, nkey, creds file or token configured for this process",
                    security.auth.kind()
                )));
            }
            _ if tokio::time::Instant::now() >= deadline => {
                return Err(BusError::Unavailable(format!(
                    "cannot reach NATS at {url} within {timeout:?}: is nats-server running \
                     (with -js)? Last error: {text}"
                )));
            }
            _ => {}
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// An error and its sources, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = NatsAuth::UserPass {
            username: "agent-web-01".into(),
            password: "hunter2".into(),
        };
        let text = format!(
            "{:?}",
            NatsSecurity {
                auth,
                ..Default::default()
            }
        );
        assert!(
            text.contains("agent-web-01") && !text.contains("hunter2"),
            "{text}"
        );
        let token = format!(
            "{:?}",
            NatsAuth::Token {
                token: "s3cret".into()
            }
        );
        assert!(!token.contains("s3cret"));
        let nkey = format!(
            "{:?}",
            NatsAuth::Nkey {
                seed: "SUAFAKESEED".into()
            }
        );
        assert!(!nkey.contains("SUAFAKE"));
    }
}
