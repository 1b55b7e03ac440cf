//! Wire model of the OSAPI control plane, with no I/O.
//!
//! * [`job`], [`agent`], [`file`](mod@file), [`node`], [`health`], [`audit`], [`error`]:
//!   REST bodies, compatible with upstream OSAPI's OpenAPI contract.
//! * [`ops`] and [`results`]: the operation catalogue with typed parameters and
//!   typed results (snake_case, with aliases for upstream's Go-cased keys).
//! * [`routes`]: the synchronous `/node/{hostname}/…` route of every operation.
//! * [`records`]: what the controller and agents exchange through the bus.
//! * [`target`]: `_any`, `_all`, hostnames and `key:value` label selectors.
//! * [`auth`]: permissions, roles and JWT claims.
//! * [`format`](mod@format): Go-style durations and other text formats.
//!
//! ```
//! use osapi_api::results::LoadResult;
//! // An upstream Go agent's result decodes into the same type as ours.
//! let load: LoadResult = serde_json::from_str(r#"{"Load1":0.5,"Load5":0.25,"Load15":0.1}"#).unwrap();
//! assert_eq!(load.load1, 0.5);
//! ```

#![warn(missing_docs)]

pub mod agent;
pub mod audit;
pub mod auth;
pub mod error;
pub mod factref;
pub mod file;
pub mod format;
pub mod health;
pub mod job;
pub mod node;
pub mod ops;
pub mod records;
pub mod results;
pub mod routes;
pub mod serde_util;
#[cfg(feature = "signing")]
pub mod signing;
pub mod target;

/// Version of these crates (semver, no commit): what a controller and an
/// agent report unless told otherwise. The `osapi` and `osapi-agent`
/// binaries report it with their git commit as build metadata
/// (`osapi_cli::version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
