//! `osapi token generate` and `osapi token validate`.

use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;
use osapi_api::auth::{BUILTIN_ROLES, Permission};
use osapi_api::format::parse_duration;
use osapi_server::auth::{Authenticator, TokenSigner};

use crate::config::OsapiFile;

/// Token commands.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Print a signed token.
    Generate {
        /// Roles, comma-separated (admin, write, read, or roles defined in the config).
        #[arg(short, long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// Subject (who the token is for).
        #[arg(short = 'u', long = "user")]
        subject: String,
        /// Explicit permissions, comma-separated; they replace the roles' permissions.
        #[arg(short, long, value_delimiter = ',')]
        permissions: Vec<String>,
        /// Lifetime (default 90d).
        #[arg(long, default_value = "90d")]
        ttl: String,
    },
    /// Check a token and print what it grants.
    Validate {
        /// The token (`osapi token validate TOKEN`; `-t TOKEN` works too).
        #[arg(value_name = "TOKEN", required_unless_present = "flag")]
        token: Option<String>,
        /// The token, as a flag.
        #[arg(short = 't', long = "token", id = "flag", hide = true)]
        flag: Option<String>,
    },
}

fn signing_key(file: &OsapiFile) -> Result<&str> {
    let key = file.api.server.security.signing_key.as_str();
    if key.is_empty() {
        bail!(
            "no signing key: set api.server.security.signing_key in the file given with -f, or OSAPI_API_SERVER_SECURITY_SIGNING_KEY"
        );
    }
    Ok(key)
}

/// `osapi token …`: mints or checks a REST API token.
pub fn run(file: &OsapiFile, cmd: TokenCommand) -> Result<()> {
    // Only the token settings: minting a token needs no other controller file
    // (the job-signing key, say) to be readable here.
    let security = &file.api.server.security;
    let custom_roles: osapi_api::auth::CustomRoles = security
        .roles
        .iter()
        .map(|(k, v)| (k.clone(), v.permissions.clone()))
        .collect();
    match cmd {
        TokenCommand::Generate {
            roles,
            subject,
            permissions,
            ttl,
        } => {
            for role in &roles {
                if !BUILTIN_ROLES.contains(&role.as_str()) && !custom_roles.contains_key(role) {
                    bail!(
                        "unknown role {role:?}: use admin, write or read, or define it under api.server.security.roles"
                    );
                }
            }
            for p in &permissions {
                p.parse::<Permission>()?;
            }
            if subject.is_empty() {
                bail!("the subject (-u) must not be empty");
            }
            let ttl: Duration =
                parse_duration(&ttl).map_err(|e| anyhow::anyhow!("--ttl {ttl:?}: {e}"))?;
            if ttl.as_secs() == 0 {
                bail!(
                    "--ttl must be at least 1s (got {ttl:?}): tokens that never expire are refused"
                );
            }
            let signer = TokenSigner::new(signing_key(file)?).map_err(anyhow::Error::msg)?;
            println!(
                "{}",
                signer
                    .sign(&subject, &roles, &permissions, ttl)
                    .map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
        TokenCommand::Validate { token, flag } => {
            let token = token.or(flag).unwrap_or_default();
            let auth = Authenticator::new(signing_key(file)?, custom_roles.clone())
                .map_err(anyhow::Error::msg)?
                .allow_tokens_without_expiry(security.allow_tokens_without_expiry);
            let principal = auth
                .authenticate(Some(&format!("Bearer {token}")))
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("subject:     {}", principal.subject);
            println!("roles:       {}", principal.roles.join(", "));
            println!(
                "permissions: {}",
                principal
                    .permissions
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
    }
}
