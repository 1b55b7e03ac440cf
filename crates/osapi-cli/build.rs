//! Records the git commit the binaries are built from, as
//! `OSAPI_GIT_COMMIT` (read by `src/version.rs`):
//!
//! 1. `OSAPI_GIT_COMMIT` in the build's environment, when set (packagers);
//! 2. a crate packaged by `cargo package`/`cargo publish`: the commit in its
//!    `.cargo_vcs_info.json` (git is not asked: the registry's copy may sit
//!    inside an unrelated repository, such as a home directory under git);
//! 3. otherwise `git rev-parse --short=12 HEAD` in this crate's directory;
//! 4. `unknown` when none of these answers.
//!
//! The script runs again only when the override, `HEAD` or the branch it
//! points to changes, not on every build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Length of the abbreviated commit.
const SHORT: usize = 12;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=OSAPI_GIT_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_env()
        .or_else(|| {
            let vcs_info = dir.join(".cargo_vcs_info.json");
            if vcs_info.exists() {
                println!("cargo:rerun-if-changed={}", vcs_info.display());
                from_vcs_info(&vcs_info)
            } else {
                from_git(&dir)
            }
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=OSAPI_GIT_COMMIT={commit}");
}

/// The override, when set and non-empty. It becomes semver build metadata,
/// so only ASCII letters, digits and `-` are allowed.
fn from_env() -> Option<String> {
    let value = std::env::var("OSAPI_GIT_COMMIT").ok()?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        panic!("OSAPI_GIT_COMMIT={value:?}: only ASCII letters, digits and '-' are allowed");
    }
    Some(value.to_string())
}

/// `"sha1": "<hex>"` of a packaged crate's `.cargo_vcs_info.json`.
fn from_vcs_info(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let rest = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let hex: String = rest
        .strip_prefix('"')?
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .take(SHORT)
        .collect();
    (hex.len() == SHORT).then_some(hex)
}

/// Asks git, and tells cargo which files to watch: `HEAD` (a checkout or a
/// branch switch), the branch's ref file (a commit) and `packed-refs`.
fn from_git(dir: &Path) -> Option<String> {
    let commit = git(dir, &["rev-parse", &format!("--short={SHORT}"), "HEAD"])?;
    if commit.is_empty() || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut watch = vec![git(dir, &["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git(dir, &["rev-parse", "--git-path", &branch]));
    }
    watch.push(git(dir, &["rev-parse", "--git-path", "packed-refs"]));
    for path in watch.into_iter().flatten() {
        // Relative to `dir`; a missing file would rerun this script on
        // every build, so only existing ones are watched.
        let path = dir.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}

/// Trimmed stdout of a successful git command.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
