//! Agent versions against the controller's minimum
//! (`api.server.min_agent_version`): an agent older than it, or one that
//! reports no version, is listed with a `VersionSkew` condition. Jobs still
//! go to it: the condition tells the operator, it does not fence the agent.

use semver::Version;

/// A version setting that is not a semantic version.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a semantic version such as 0.1.0: {source}")]
pub struct InvalidVersion {
    /// The text given.
    pub text: String,
    /// What the parser said.
    #[source]
    pub source: semver::Error,
}

/// Parses a version as an operator writes it: `0.1.0`, `1.2.3-rc.1`, or
/// the shorter `1` and `1.2` (read as `1.0.0` and `1.2.0`).
pub fn parse_version(text: &str) -> Result<Version, InvalidVersion> {
    let text = text.trim();
    let short = !text.is_empty()
        && text.split('.').count() < 3
        && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    let full = match text.split('.').count() {
        1 if short => format!("{text}.0.0"),
        2 if short => format!("{text}.0"),
        _ => text.to_string(),
    };
    Version::parse(&full).map_err(|source| InvalidVersion {
        text: text.to_string(),
        source,
    })
}

/// The minimum a controller of version `controller` asks of agents when
/// none is configured: its own `major.minor.0`, so agents of an older
/// release line are flagged and patch releases of its own are not. A
/// pre-release controller (`0.2.0-rc.1`) accepts every pre-release of its
/// line too (`0.2.0-0`).
pub fn default_min_agent_version(controller: &Version) -> Version {
    let mut min = Version::new(controller.major, controller.minor, 0);
    if !controller.pre.is_empty() {
        min.pre = semver::Prerelease::new("0").unwrap_or(semver::Prerelease::EMPTY);
    }
    min
}

/// Why an agent reporting `reported` falls short of `min`, or `None` when it
/// does not. Build metadata (the git commit) plays no part; pre-releases
/// come before their release, as semver orders them.
pub fn version_skew(reported: &str, min: &Version) -> Option<String> {
    let reported = reported.trim();
    if reported.is_empty() {
        return Some(format!(
            "agent reports no version; the controller's minimum is {min}"
        ));
    }
    match Version::parse(reported) {
        Err(_) => Some(format!(
            "agent version {reported:?} is not a semantic version; the controller's minimum is {min}"
        )),
        Ok(v) => v
            .cmp_precedence(min)
            .is_lt()
            .then(|| format!("agent {reported} is older than the controller's minimum {min}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is how it fails
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn older_agents_are_skewed_newer_and_equal_are_not() {
        let min = v("0.1.0");
        assert_eq!(
            version_skew("0.0.9", &min).as_deref(),
            Some("agent 0.0.9 is older than the controller's minimum 0.1.0")
        );
        assert_eq!(version_skew("0.1.0", &min), None);
        assert_eq!(version_skew("0.1.7", &min), None);
        assert_eq!(version_skew("1.0.0", &min), None);
        // Numeric, not textual, order.
        assert_eq!(version_skew("0.10.0", &v("0.9.0")), None);
        assert!(version_skew("0.9.0", &v("0.10.0")).is_some());
    }

    #[test]
    fn the_commit_plays_no_part() {
        let min = v("0.1.0");
        assert_eq!(version_skew("0.1.0+8d085288c507", &min), None);
        assert_eq!(version_skew("0.1.0", &v("0.1.0+ffffffffffff")), None);
        assert_eq!(
            version_skew("0.0.9+8d085288c507", &min).as_deref(),
            Some("agent 0.0.9+8d085288c507 is older than the controller's minimum 0.1.0")
        );
    }

    #[test]
    fn pre_releases_come_before_their_release() {
        assert!(version_skew("0.2.0-rc.1", &v("0.2.0")).is_some());
        assert_eq!(version_skew("0.2.0-rc.1", &v("0.2.0-rc.1")), None);
        assert_eq!(version_skew("0.2.0-rc.2", &v("0.2.0-rc.1")), None);
    }

    #[test]
    fn no_version_or_a_bad_one_is_skewed() {
        let min = v("0.1.0");
        assert_eq!(
            version_skew("", &min).as_deref(),
            Some("agent reports no version; the controller's minimum is 0.1.0")
        );
        assert_eq!(
            version_skew("test", &min).as_deref(),
            Some(
                "agent version \"test\" is not a semantic version; the controller's minimum is 0.1.0"
            )
        );
    }

    #[test]
    fn default_minimum_is_the_controllers_release_line() {
        assert_eq!(default_min_agent_version(&v("0.1.0")), v("0.1.0"));
        assert_eq!(default_min_agent_version(&v("0.3.7")), v("0.3.0"));
        assert_eq!(default_min_agent_version(&v("2.4.1+abc")), v("2.4.0"));
        let pre = default_min_agent_version(&v("0.2.0-rc.1"));
        assert_eq!(pre, v("0.2.0-0"));
        // A pre-release controller does not flag its own line's agents …
        assert_eq!(version_skew("0.2.0-rc.1", &pre), None);
        assert_eq!(version_skew("0.2.0-alpha", &pre), None);
        // … but does flag the previous line.
        assert!(version_skew("0.1.9", &pre).is_some());
        // Patch releases of the controller's line are never skewed.
        assert_eq!(
            version_skew("0.3.0", &default_min_agent_version(&v("0.3.7"))),
            None
        );
    }

    #[test]
    fn settings_parse_short_forms_and_refuse_others() {
        assert_eq!(parse_version("0.1.0").unwrap(), v("0.1.0"));
        assert_eq!(parse_version(" 1.2.3-rc.1 ").unwrap(), v("1.2.3-rc.1"));
        assert_eq!(parse_version("0.2").unwrap(), v("0.2.0"));
        assert_eq!(parse_version("1").unwrap(), v("1.0.0"));
        for bad in ["v0.1.0", "0.1.x", "latest", "0..1", "1.2.3.4", "."] {
            let e = parse_version(bad).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("{bad:?} is not a semantic version")),
                "{e}"
            );
        }
    }
}
