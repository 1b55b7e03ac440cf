//! The version of the binaries, in one place: the crate version and the git
//! commit they were built from (`build.rs`; `unknown` outside a git
//! checkout). `osapi version`, `--version`, the controller's
//! `/health/status` and the agents' registrations all read it from here.

use serde::Serialize;

/// Version of the crates (`0.1.0`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Abbreviated git commit of the build (12 hex digits), or `unknown`.
pub const COMMIT: &str = env!("OSAPI_GIT_COMMIT");

/// What `--version` prints after the program name: `0.1.0 (commit 8d085288c507)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("OSAPI_GIT_COMMIT"),
    ")"
);

/// True when the commit is known.
pub fn commit_known() -> bool {
    COMMIT != "unknown"
}

/// The version as controllers and agents report it on the wire: semver with
/// the commit as build metadata (`0.1.0+8d085288c507`), or the plain
/// version when the commit is unknown. Build metadata plays no part in
/// version comparisons (`api.server.min_agent_version`).
pub fn wire() -> String {
    if commit_known() {
        format!("{VERSION}+{COMMIT}")
    } else {
        VERSION.to_string()
    }
}

/// `osapi version --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Crate version.
    pub version: &'static str,
    /// Git commit, or `unknown`.
    pub commit: &'static str,
}

/// This build's version and commit.
pub fn info() -> VersionInfo {
    VersionInfo {
        version: VERSION,
        commit: COMMIT,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is how it fails
    use super::*;

    #[test]
    fn wire_version_is_semver_with_the_commit_as_build_metadata() {
        let wire = wire();
        let parsed = osapi_server::version::parse_version(&wire).unwrap();
        assert_eq!(parsed.to_string(), wire);
        assert_eq!(
            (parsed.major, parsed.minor, parsed.patch),
            osapi_server::version::parse_version(VERSION)
                .map(|v| (v.major, v.minor, v.patch))
                .unwrap()
        );
        if commit_known() {
            assert_eq!(parsed.build.as_str(), COMMIT);
        } else {
            assert!(parsed.build.is_empty());
        }
        assert_eq!(LONG, format!("{VERSION} (commit {COMMIT})"));
    }
}
