//! Job signatures (feature `signing`): controllers sign every job record
//! with Ed25519, agents run only jobs signed by a key they trust, unmodified.
//! A compromised bus can then replay or forge job messages but cannot make an
//! agent run anything a controller did not sign.
//!
//! What is signed is the job as the agent executes it: id, operation (type
//! and data), class, target, expected hosts, creation time, deadline and the
//! job it retries, serialised canonically and prefixed with a context string.
//!
//! ```
//! use osapi_api::signing::{JobSigner, JobVerifier};
//! # use osapi_api::records::JobRecord;
//! # let mut record: JobRecord = serde_json::from_value(serde_json::json!({
//! #   "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "created": "2026-01-01T00:00:00Z",
//! #   "operation": {"type": "node.hostname.get"}, "op_type": "node.hostname.get",
//! #   "class": "query", "target": "_any", "deadline": "2099-01-01T00:00:00Z"})).unwrap();
//! let signer = JobSigner::generate().unwrap();
//! signer.sign(&mut record);
//! let verifier = JobVerifier::new(vec![signer.public_key()]);
//! assert!(verifier.verify(&record).is_ok());
//! record.operation["data"] = serde_json::json!({"command": "rm -rf /"});
//! assert!(verifier.verify(&record).is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::ops::JobClass;
use crate::records::JobRecord;
pub use crate::records::JobSignature;

/// Prefix of every signed message: a signature over something else never
/// verifies as a job signature.
const CONTEXT: &[u8] = b"osapi job signature v1\n";

/// An Ed25519 public key (32 bytes), written as base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// A short id for the key: the first 8 bytes of its SHA-256, in hex.
    pub fn id(&self) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.0);
        digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a public key.
    #[error(
        "not an Ed25519 public key: expected 32 bytes as base64 (as `osapi key generate` writes) or 64 hex digits"
    )]
    Public,
    /// Not a private key.
    #[error(
        "not an Ed25519 private key: expected PKCS#8 (PEM or DER, as `osapi key generate` writes) or a 32-byte seed (raw, 64 hex digits or base64)"
    )]
    Private,
    /// The system could not generate a key.
    #[error("cannot generate a key: the system random source failed")]
    Generate,
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let s = s.trim();
        let bytes = if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16))
                .collect::<Result<Vec<u8>, _>>()
                .map_err(|_| KeyError::Public)?
        } else {
            STANDARD.decode(s).map_err(|_| KeyError::Public)?
        };
        let raw: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Public)?;
        Ok(PublicKey(raw))
    }
}

/// The canonical bytes signed for a record.
fn message(record: &JobRecord) -> Vec<u8> {
    #[derive(Serialize)]
    struct Signed<'a> {
        id: Uuid,
        op_type: &'a str,
        operation: &'a Value,
        class: JobClass,
        target: &'a str,
        expected_hosts: &'a [String],
        created_ns: i128,
        deadline_ns: i128,
        retry_of: Option<Uuid>,
    }
    let signed = Signed {
        id: record.id,
        op_type: &record.op_type,
        operation: &record.operation,
        class: record.class,
        target: &record.target,
        expected_hosts: &record.expected_hosts,
        created_ns: record.created.unix_timestamp_nanos(),
        deadline_ns: record.deadline.unix_timestamp_nanos(),
        retry_of: record.retry_of,
    };
    let mut out = CONTEXT.to_vec();
    // Serialising plain data to a Vec cannot fail.
    serde_json::to_writer(&mut out, &signed).unwrap_or_default();
    out
}

/// A controller's signing key.
pub struct JobSigner {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl fmt::Debug for JobSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        write!(f, "JobSigner({})", self.public.id())
    }
}

impl JobSigner {
    fn from_pair(pair: Ed25519KeyPair) -> Self {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(pair.public_key().as_ref());
        JobSigner {
            pair,
            public: PublicKey(raw),
        }
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<JobSigner, KeyError> {
        Ed25519KeyPair::generate()
            .map(Self::from_pair)
            .map_err(|_| KeyError::Generate)
    }

    /// Reads a private key file's contents: PKCS#8 (PEM or DER) or a
    /// 32-byte seed (raw, 64 hex digits or base64).
    pub fn from_bytes(bytes: &[u8]) -> Result<JobSigner, KeyError> {
        let text = std::str::from_utf8(bytes).map(str::trim).ok();
        if let Some(pem) = text.and_then(pem_body) {
            let der = STANDARD.decode(pem).map_err(|_| KeyError::Private)?;
            return Self::from_pkcs8(&der);
        }
        if let Some(t) = text {
            if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                let seed: Vec<u8> = (0..32)
                    .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16))
                    .collect::<Result<_, _>>()
                    .map_err(|_| KeyError::Private)?;
                return Self::from_seed(&seed);
            }
            if let Ok(decoded) = STANDARD.decode(t)
                && decoded.len() == 32
            {
                return Self::from_seed(&decoded);
            }
        }
        if bytes.len() == 32 {
            return Self::from_seed(bytes);
        }
        Self::from_pkcs8(bytes)
    }

    fn from_pkcs8(der: &[u8]) -> Result<JobSigner, KeyError> {
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(Self::from_pair)
            .map_err(|_| KeyError::Private)
    }

    fn from_seed(seed: &[u8]) -> Result<JobSigner, KeyError> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(Self::from_pair)
            .map_err(|_| KeyError::Private)
    }

    /// The key as PKCS#8 PEM, for writing to a file.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let der = self.pair.to_pkcs8().map_err(|_| KeyError::Private)?;
        let b64 = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        Ok(format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ))
    }

    /// The public half, for agents' `agent.security.job_verify_keys`.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Signs `record` (replacing any signature it had).
    pub fn sign(&self, record: &mut JobRecord) {
        record.signature = None;
        let sig = self.pair.sign(&message(record));
        record.signature = Some(JobSignature {
            key_id: self.public.id(),
            sig: STANDARD.encode(sig.as_ref()),
        });
    }
}

/// The base64 body of a `PRIVATE KEY` PEM block.
fn pem_body(text: &str) -> Option<String> {
    let start = text.find("-----BEGIN PRIVATE KEY-----")?;
    let rest = &text[start + "-----BEGIN PRIVATE KEY-----".len()..];
    let end = rest.find("-----END PRIVATE KEY-----")?;
    Some(rest[..end].split_whitespace().collect())
}

/// Why an agent refused a job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No signature while signatures are required.
    #[error("the job is not signed")]
    Unsigned,
    /// Signed by a key the agent does not trust.
    #[error("the job is signed by an unknown key {0}")]
    UnknownKey(String),
    /// The signature does not match the job (modified after signing).
    #[error("the job's signature does not match its content")]
    BadSignature,
}

/// The keys an agent trusts (several, so keys can be rotated).
#[derive(Debug, Clone, Default)]
pub struct JobVerifier {
    keys: Vec<PublicKey>,
}

impl JobVerifier {
    /// Trusts `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        JobVerifier { keys }
    }

    /// True when no key is trusted (signatures are then not checked).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that `record` is signed, by a trusted key, and unmodified.
    pub fn verify(&self, record: &JobRecord) -> Result<(), Rejection> {
        let signature = record.signature.as_ref().ok_or(Rejection::Unsigned)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id() == signature.key_id)
            .ok_or_else(|| Rejection::UnknownKey(signature.key_id.clone()))?;
        let sig = STANDARD
            .decode(&signature.sig)
            .map_err(|_| Rejection::BadSignature)?;
        UnparsedPublicKey::new(&ED25519, key.as_bytes())
            .verify(&message(record), &sig)
            .map_err(|_| Rejection::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn record() -> JobRecord {
        JobRecord {
            id: Uuid::new_v4(),
            created: OffsetDateTime::now_utc(),
            operation: serde_json::json!({"type": "command.exec.execute", "data": {"command": "uptime", "args": ["-p"]}}),
            op_type: "command.exec.execute".into(),
            class: JobClass::Modify,
            target: "web-01".into(),
            expected_hosts: vec!["web-01".into()],
            deadline: OffsetDateTime::now_utc() + std::time::Duration::from_secs(60),
            retry_of: None,
            signature: None,
            trace_parent: None,
        }
    }

    #[test]
    fn every_signed_field_is_covered() {
        let signer = JobSigner::generate().unwrap();
        let verifier = JobVerifier::new(vec![signer.public_key()]);
        let mut good = record();
        signer.sign(&mut good);
        // The signature survives the trip through JSON (the bus).
        let wire: JobRecord = serde_json::from_slice(&serde_json::to_vec(&good).unwrap()).unwrap();
        assert_eq!(verifier.verify(&wire), Ok(()));
        type Change = Box<dyn Fn(&mut JobRecord)>;
        let tamper: Vec<Change> = vec![
            Box::new(|r| r.id = Uuid::new_v4()),
            Box::new(|r| r.operation["data"]["args"][0] = "-s".into()),
            Box::new(|r| r.op_type = "command.shell.execute".into()),
            Box::new(|r| r.target = "_all".into()),
            Box::new(|r| r.expected_hosts.push("db-01".into())),
            Box::new(|r| r.deadline += std::time::Duration::from_secs(3600)),
            Box::new(|r| r.created -= std::time::Duration::from_secs(1)),
            Box::new(|r| r.retry_of = Some(Uuid::new_v4())),
            Box::new(|r| r.class = JobClass::Query),
        ];
        for (i, t) in tamper.iter().enumerate() {
            let mut r = wire.clone();
            t(&mut r);
            assert_eq!(
                verifier.verify(&r),
                Err(Rejection::BadSignature),
                "change {i}"
            );
        }
        let mut unsigned = wire.clone();
        unsigned.signature = None;
        assert_eq!(verifier.verify(&unsigned), Err(Rejection::Unsigned));
        let other = JobSigner::generate().unwrap();
        let mut foreign = record();
        other.sign(&mut foreign);
        assert!(matches!(
            verifier.verify(&foreign),
            Err(Rejection::UnknownKey(_))
        ));
        // Rotation: trusting both keys accepts both.
        let both = JobVerifier::new(vec![other.public_key(), signer.public_key()]);
        assert_eq!(both.verify(&foreign), Ok(()));
        assert_eq!(both.verify(&wire), Ok(()));
    }

    #[test]
    fn keys_round_trip_through_their_file_forms() {
        let signer = JobSigner::generate().unwrap();
        let pem = signer.to_pem().unwrap();
        assert!(!format!("{signer:?}").contains(&pem[30..60]));
        let again = JobSigner::from_bytes(pem.as_bytes()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        let seed = [7u8; 32];
        let raw = JobSigner::from_bytes(&seed).unwrap();
        let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            JobSigner::from_bytes(hex.as_bytes()).unwrap().public_key(),
            raw.public_key()
        );
        let public: PublicKey = signer.public_key().to_string().parse().unwrap();
        assert_eq!(public, signer.public_key());
        assert!("not a key".parse::<PublicKey>().is_err());
        assert!(JobSigner::from_bytes(b"garbage").is_err());
    }
}
