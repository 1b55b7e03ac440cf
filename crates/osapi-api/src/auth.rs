//! Authorisation model shared by the controller and the CLI: the permission
//! set, the built-in roles and their expansion, and the JWT claims upstream's
//! `osapi token generate` issues.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One `resource:verb` permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// `agent:read`
    #[serde(rename = "agent:read")]
    AgentRead,
    /// `agent:write`
    #[serde(rename = "agent:write")]
    AgentWrite,
    /// `node:read`
    #[serde(rename = "node:read")]
    NodeRead,
    /// `network:read`
    #[serde(rename = "network:read")]
    NetworkRead,
    /// `network:write`
    #[serde(rename = "network:write")]
    NetworkWrite,
    /// `job:read`
    #[serde(rename = "job:read")]
    JobRead,
    /// `job:write`
    #[serde(rename = "job:write")]
    JobWrite,
    /// `health:read`
    #[serde(rename = "health:read")]
    HealthRead,
    /// `audit:read`
    #[serde(rename = "audit:read")]
    AuditRead,
    /// `command:execute`
    #[serde(rename = "command:execute")]
    CommandExecute,
    /// `file:read`
    #[serde(rename = "file:read")]
    FileRead,
    /// `file:write`
    #[serde(rename = "file:write")]
    FileWrite,
}

impl Permission {
    /// Every known permission.
    pub const ALL: [Permission; 12] = [
        Permission::AgentRead,
        Permission::AgentWrite,
        Permission::NodeRead,
        Permission::NetworkRead,
        Permission::NetworkWrite,
        Permission::JobRead,
        Permission::JobWrite,
        Permission::HealthRead,
        Permission::AuditRead,
        Permission::CommandExecute,
        Permission::FileRead,
        Permission::FileWrite,
    ];

    /// The `resource:verb` text.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::AgentRead => "agent:read",
            Permission::AgentWrite => "agent:write",
            Permission::NodeRead => "node:read",
            Permission::NetworkRead => "network:read",
            Permission::NetworkWrite => "network:write",
            Permission::JobRead => "job:read",
            Permission::JobWrite => "job:write",
            Permission::HealthRead => "health:read",
            Permission::AuditRead => "audit:read",
            Permission::CommandExecute => "command:execute",
            Permission::FileRead => "file:read",
            Permission::FileWrite => "file:write",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown permission name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown permission {0:?} (known: agent:read, agent:write, node:read, network:read, network:write, job:read, job:write, health:read, audit:read, command:execute, file:read, file:write)"
)]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_string()))
    }
}

/// The three built-in role names.
pub const BUILTIN_ROLES: [&str; 3] = ["admin", "write", "read"];

/// Permissions of a built-in role, or `None` for other names.
///
/// ```
/// use osapi_api::auth::{builtin_role_permissions, Permission};
/// let write = builtin_role_permissions("write").unwrap();
/// assert!(write.contains(&Permission::FileWrite));
/// assert!(!write.contains(&Permission::CommandExecute));
/// ```
pub fn builtin_role_permissions(role: &str) -> Option<&'static [Permission]> {
    use Permission::*;
    const WRITE: &[Permission] = &[
        AgentRead,
        NodeRead,
        NetworkRead,
        NetworkWrite,
        JobRead,
        JobWrite,
        HealthRead,
        FileRead,
        FileWrite,
    ];
    const READ: &[Permission] = &[
        AgentRead,
        NodeRead,
        NetworkRead,
        JobRead,
        HealthRead,
        FileRead,
    ];
    match role {
        "admin" => Some(&Permission::ALL),
        "write" => Some(WRITE),
        "read" => Some(READ),
        _ => None,
    }
}

/// Roles defined or redefined in configuration: role name → permission names.
pub type CustomRoles = BTreeMap<String, Vec<String>>;

/// Resolves the effective permission set of a token.
///
/// A non-empty `permissions` claim replaces the roles. Otherwise each role
/// expands to its configured permissions (which replace the built-in ones of
/// the same name) or to the built-in set. Unknown permission strings are kept
/// as text, so custom roles can grant them, but they never satisfy a route.
pub fn effective_permissions(claims: &Claims, custom: &CustomRoles) -> BTreeSet<String> {
    if let Some(perms) = claims.permissions.as_ref().filter(|p| !p.is_empty()) {
        return perms.iter().cloned().collect();
    }
    let mut out = BTreeSet::new();
    for role in &claims.roles {
        if let Some(list) = custom.get(role) {
            out.extend(list.iter().cloned());
        } else if let Some(list) = builtin_role_permissions(role) {
            out.extend(list.iter().map(|p| p.as_str().to_string()));
        }
    }
    out
}

/// JWT claims, as upstream's `osapi token generate` issues them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Claims {
    /// Role names; required (may be empty).
    pub roles: Vec<String>,
    /// Explicit permissions; when non-empty they replace the roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Issuer (`osapi`); not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Subject: who the token belongs to; recorded in the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience; not checked.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_claim_overrides_roles() {
        let claims = Claims {
            roles: vec!["admin".into()],
            permissions: Some(vec!["node:read".into()]),
            ..Default::default()
        };
        let eff = effective_permissions(&claims, &CustomRoles::new());
        assert_eq!(eff.into_iter().collect::<Vec<_>>(), vec!["node:read"]);
    }

    #[test]
    fn custom_role_replaces_builtin() {
        let mut custom = CustomRoles::new();
        custom.insert("read".into(), vec!["health:read".into()]);
        custom.insert("ops".into(), vec!["node:read".into()]);
        let claims = Claims {
            roles: vec!["read".into(), "ops".into()],
            ..Default::default()
        };
        let eff: Vec<_> = effective_permissions(&claims, &custom)
            .into_iter()
            .collect();
        assert_eq!(eff, vec!["health:read", "node:read"]);
    }

    #[test]
    fn permission_round_trip() {
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
        }
        assert!("node:write".parse::<Permission>().is_err());
    }

    #[test]
    fn aud_accepts_string_or_list() {
        let c: Claims = serde_json::from_str(r#"{"roles":[],"aud":"x"}"#).unwrap();
        assert_eq!(c.aud, vec!["x"]);
        let c: Claims = serde_json::from_str(r#"{"roles":[],"aud":["a","b"]}"#).unwrap();
        assert_eq!(c.aud, vec!["a", "b"]);
    }
}
