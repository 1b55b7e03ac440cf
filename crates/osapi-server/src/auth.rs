//! Token checks as upstream does them: `Authorization: Bearer <JWT>`, HS256/384/512
//! keyed by the raw signing-key string, a `roles` claim, an optional
//! `permissions` claim that replaces the roles, and one required permission
//! per route. Also mints tokens (`osapi token generate`, embedded mode).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use osapi_api::audit::AuditAction;
use osapi_api::auth::{BUILTIN_ROLES, Claims, CustomRoles, Permission, effective_permissions};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::metrics::AuthFailure;
use crate::state::AppState;

/// Who made a request, once the token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` claim.
    pub subject: String,
    /// `roles` claim.
    pub roles: Vec<String>,
    /// Effective permissions.
    pub permissions: BTreeSet<String>,
}

impl Principal {
    /// 403 unless the principal holds `perm`.
    pub fn require(&self, perm: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(perm.as_str()) {
            return Ok(());
        }
        let resolved: Vec<&str> = self.permissions.iter().map(String::as_str).collect();
        Err(ApiError::forbidden(format!(
            "Insufficient permissions. Required: [{perm}], resolved: [{}]",
            resolved.join(" ")
        )))
    }
}

/// Tokens remembered after a successful check (a client sends the same one
/// again and again; re-verifying the HMAC and re-parsing the claims each time
/// is wasted work). Expiry is still checked on every use.
const TOKEN_CACHE_SIZE: usize = 1024;

/// A verified token: who, and until when.
struct Verified {
    principal: Arc<Principal>,
    exp: Option<i64>,
}

/// Checks bearer tokens.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    roles: CustomRoles,
    allow_without_expiry: bool,
    cache: Mutex<HashMap<String, Verified>>,
}

impl Authenticator {
    /// A checker for tokens signed with `signing_key`; `roles` defines or
    /// redefines roles.
    pub fn new(signing_key: &str, roles: CustomRoles) -> Result<Self, String> {
        let key = DecodingKey::from_secret(signing_key.as_bytes())
            .map_err(|e| format!("invalid signing key: {e}"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        validation.required_spec_claims = HashSet::new();
        // Expiry is checked here, strictly: a token is refused from its
        // `exp` second on (the library accepts it during that second).
        validation.validate_exp = false;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(Authenticator {
            key,
            validation,
            roles,
            allow_without_expiry: false,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Accepts tokens without an `exp` claim
    /// (`api.server.security.allow_tokens_without_expiry`; refused by default).
    pub fn allow_tokens_without_expiry(mut self, allow: bool) -> Self {
        self.allow_without_expiry = allow;
        self
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Arc<Principal>, ApiError> {
        self.authenticate_at(header, OffsetDateTime::now_utc().unix_timestamp())
    }

    /// [`Authenticator::authenticate`] at `now` (Unix seconds).
    fn authenticate_at(&self, header: Option<&str>, now: i64) -> Result<Arc<Principal>, ApiError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::refused(
                    StatusCode::UNAUTHORIZED,
                    AuthFailure::MissingToken,
                    "Bearer token required",
                )
            })?;
        {
            let cache = crate::lock(&self.cache);
            if let Some(v) = cache.get(token)
                && v.exp.is_none_or(|exp| exp > now)
            {
                return Ok(v.principal.clone());
            }
        }
        let (principal, exp) = self.verify(token, now)?;
        let principal = Arc::new(principal);
        if exp.is_some_and(|exp| exp <= now) {
            // Not cacheable (a not-before time): checked in full each time.
            return Ok(principal);
        }
        let mut cache = crate::lock(&self.cache);
        if cache.len() >= TOKEN_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(
            token.to_string(),
            Verified {
                principal: principal.clone(),
                exp,
            },
        );
        Ok(principal)
    }

    /// Full check of a token: signature, times, roles. Returns the principal
    /// and how long the result may be cached (its expiry).
    fn verify(&self, token: &str, now: i64) -> Result<(Principal, Option<i64>), ApiError> {
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map_err(|e| ApiError::unauthorized(format!("Invalid token: {e}")))?;
        if data
            .claims
            .get("roles")
            .is_none_or(serde_json::Value::is_null)
        {
            return Err(ApiError::unauthorized(
                "Invalid token: roles claim is required",
            ));
        }
        let claims: Claims = serde_json::from_value(data.claims)
            .map_err(|e| ApiError::unauthorized(format!("Invalid token: {e}")))?;
        match claims.exp {
            Some(exp) if exp <= now => {
                return Err(ApiError::refused(
                    StatusCode::UNAUTHORIZED,
                    AuthFailure::ExpiredToken,
                    "Invalid token: ExpiredSignature",
                ));
            }
            None if !self.allow_without_expiry => {
                return Err(ApiError::unauthorized(
                    "Invalid token: exp claim is required \
                     (api.server.security.allow_tokens_without_expiry is off)",
                ));
            }
            _ => {}
        }
        if let Some(iat) = claims.iat
            && iat > now + 60
        {
            return Err(ApiError::unauthorized(
                "Invalid token: token used before issued",
            ));
        }
        for role in &claims.roles {
            if !BUILTIN_ROLES.contains(&role.as_str()) && !self.roles.contains_key(role) {
                return Err(ApiError::unauthorized(format!(
                    "Invalid token: unknown role {role:?} (known: admin, write, read{})",
                    self.roles
                        .keys()
                        .filter(|r| !BUILTIN_ROLES.contains(&r.as_str()))
                        .map(|r| format!(", {r}"))
                        .collect::<String>()
                )));
            }
        }
        // Tokens with a not-before time are rare: never cached, checked each time.
        let cache_until = if claims.nbf.is_some() {
            Some(i64::MIN)
        } else {
            claims.exp
        };
        Ok((
            Principal {
                permissions: effective_permissions(&claims, &self.roles),
                subject: claims.sub.unwrap_or_default(),
                roles: claims.roles,
            },
            cache_until,
        ))
    }
}

/// Mints tokens like upstream's `osapi token generate`.
pub struct TokenSigner {
    key: EncodingKey,
}

impl TokenSigner {
    /// A signer for `signing_key`.
    pub fn new(signing_key: &str) -> Result<Self, String> {
        if signing_key.is_empty() {
            return Err("signing key must not be empty".into());
        }
        Ok(TokenSigner {
            key: EncodingKey::from_secret(signing_key.as_bytes())
                .map_err(|e| format!("invalid signing key: {e}"))?,
        })
    }

    /// Signs an HS256 token for `subject` with `roles` and optional explicit
    /// `permissions`, valid for `ttl` (which must be at least one second).
    pub fn sign(
        &self,
        subject: &str,
        roles: &[String],
        permissions: &[String],
        ttl: Duration,
    ) -> Result<String, String> {
        if ttl.as_secs() == 0 {
            return Err(format!(
                "token lifetime must be at least 1s, got {}",
                osapi_api::format::go_duration(ttl)
            ));
        }
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            roles: roles.to_vec(),
            permissions: (!permissions.is_empty()).then(|| permissions.to_vec()),
            iss: Some("osapi".into()),
            sub: Some(subject.to_string()),
            aud: vec!["https://localhost".into(), "http://localhost".into()],
            exp: Some(now + ttl.as_secs() as i64),
            iat: Some(now),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| format!("failed to sign token: {e}"))
    }
}

/// A signing key of 64 hex characters: 32 bytes from the operating
/// system's CSPRNG (`getrandom`).
pub fn random_signing_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// A permission a route requires.
pub trait Required: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! permission_markers {
    ($($name:ident => $perm:ident),* $(,)?) => {
        /// Marker types naming the permission a route requires.
        pub mod perm {
            use super::*;
            $(
                #[doc = concat!("Requires `", stringify!($perm), "`.")]
                pub struct $name;
                impl Required for $name {
                    const PERMISSION: Permission = Permission::$perm;
                }
            )*
        }
    };
}

permission_markers! {
    AgentRead => AgentRead,
    AgentWrite => AgentWrite,
    NodeRead => NodeRead,
    NetworkRead => NetworkRead,
    NetworkWrite => NetworkWrite,
    JobRead => JobRead,
    JobWrite => JobWrite,
    HealthRead => HealthRead,
    AuditRead => AuditRead,
    CommandExecute => CommandExecute,
    FileRead => FileRead,
    FileWrite => FileWrite,
}

/// Requires the permission of the operation `O` starts, read from the
/// operation catalogue ([`osapi_api::ops::Operation::permission`]).
pub struct OperationPermission<O>(PhantomData<O>);

impl<O: osapi_api::ops::Op> Required for OperationPermission<O> {
    const PERMISSION: Permission = O::OPERATION.permission();
}

/// What the audit middleware learns while a request is handled: who made
/// it, and what it started or changed.
#[derive(Clone, Default)]
pub struct AuditSlot(Arc<Mutex<AuditNote>>);

/// The contents of an [`AuditSlot`].
#[derive(Default)]
pub struct AuditNote {
    /// The caller, once the token checked out (401s leave it empty).
    pub principal: Option<Arc<Principal>>,
    /// What the request started or changed.
    pub action: AuditAction,
}

impl AuditSlot {
    /// Takes what was noted.
    pub fn take(&self) -> AuditNote {
        std::mem::take(&mut *crate::lock(&self.0))
    }

    fn set_principal(&self, principal: Arc<Principal>) {
        crate::lock(&self.0).principal = Some(principal);
    }

    fn note(&self, f: impl FnOnce(&mut AuditAction)) {
        f(&mut crate::lock(&self.0).action);
    }
}

/// Extractor: the request carries a valid token holding permission `P`.
/// Put it first among a handler's arguments so authentication happens before
/// the body is read.
pub struct Authorized<P: Required> {
    /// The caller.
    pub principal: Arc<Principal>,
    /// The request's audit entry.
    pub audit: AuditNotes,
    _perm: PhantomData<P>,
}

/// Where a handler records what its request starts or changes.
#[derive(Clone, Default)]
pub struct AuditNotes(Option<AuditSlot>);

impl AuditNotes {
    /// Records in the request's audit entry what it starts or changes.
    pub fn note(&self, f: impl FnOnce(&mut AuditAction)) {
        if let Some(slot) = &self.0 {
            slot.note(f);
        }
    }
}

impl<P: Required> Authorized<P> {
    /// Records in the request's audit entry what it starts or changes.
    pub fn note(&self, f: impl FnOnce(&mut AuditAction)) {
        self.audit.note(f);
    }

    /// 403 unless the caller also holds `perm` (the permission of the
    /// operation a job route is about to start).
    pub fn require(&self, perm: Permission) -> Result<(), ApiError> {
        self.principal.require(perm)
    }
}

impl<P: Required> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = state.auth.authenticate(header)?;
        // 403s are audited too (the caller is known), 401s are not.
        let audit = parts.extensions.get::<AuditSlot>().cloned();
        if let Some(slot) = &audit {
            slot.set_principal(principal.clone());
        }
        principal.require(P::PERMISSION)?;
        Ok(Authorized {
            principal,
            audit: AuditNotes(audit),
            _perm: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_authenticate() {
        let signer = TokenSigner::new("secret").unwrap();
        let token = signer
            .sign("me", &["read".into()], &[], Duration::from_secs(60))
            .unwrap();
        let auth = Authenticator::new("secret", CustomRoles::new()).unwrap();
        let p = auth.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(p.subject, "me");
        assert!(p.require(Permission::NodeRead).is_ok());
        let denied = p.require(Permission::CommandExecute).unwrap_err();
        assert_eq!(denied.status, axum::http::StatusCode::FORBIDDEN);
        assert!(denied.message.contains("Required: [command:execute]"));
        let other = Authenticator::new("other", CustomRoles::new()).unwrap();
        assert_eq!(
            other
                .authenticate(Some(&format!("Bearer {token}")))
                .unwrap_err()
                .status,
            axum::http::StatusCode::UNAUTHORIZED
        );
        assert!(auth.authenticate(Some(&format!("bearer {token}"))).is_err());
        assert!(auth.authenticate(None).is_err());
    }

    #[test]
    fn cached_tokens_still_expire() {
        let signer = TokenSigner::new("k").unwrap();
        let token = signer
            .sign("me", &["read".into()], &[], Duration::from_secs(1))
            .unwrap();
        let auth = Authenticator::new("k", CustomRoles::new()).unwrap();
        let header = format!("Bearer {token}");
        assert!(auth.authenticate(Some(&header)).is_ok());
        assert!(
            auth.authenticate(Some(&header)).is_ok(),
            "served from the cache"
        );
        // At its expiry second (and after), the cached answer no longer holds.
        let exp = OffsetDateTime::now_utc().unix_timestamp() + 1;
        for now in [exp, exp + 60] {
            let err = auth.authenticate_at(Some(&header), now).unwrap_err();
            assert_eq!(err.status, axum::http::StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn unknown_roles_need_configuration() {
        let signer = TokenSigner::new("k").unwrap();
        let token = signer
            .sign("me", &["ops".into()], &[], Duration::from_secs(60))
            .unwrap();
        let plain = Authenticator::new("k", CustomRoles::new()).unwrap();
        assert!(
            plain
                .authenticate(Some(&format!("Bearer {token}")))
                .unwrap_err()
                .message
                .contains("unknown role")
        );
        let mut roles = CustomRoles::new();
        roles.insert("ops".into(), vec!["node:read".into()]);
        let custom = Authenticator::new("k", roles).unwrap();
        let p = custom
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap();
        assert!(p.require(Permission::NodeRead).is_ok());
        assert!(p.require(Permission::JobRead).is_err());
    }
}
