//! The agent's state directory (`agent.state_dir`): made if missing and
//! checked writable at start. What goes into it (the file of jobs taken, the
//! crash journal) is written later, some of it only when first needed, so a
//! directory the agent cannot write is refused here rather than found out
//! at the first job.

use std::path::Path;

use nix::unistd::{AccessFlags, access};

/// Makes `dir` (and its parents) if missing and checks that this process
/// may create files in it.
pub(crate) fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    /// Set in the unprivileged re-run of the test below.
    const LOCKED: &str = "OSAPI_TEST_LOCKED_STATE_DIR";

    #[test]
    fn a_directory_the_agent_cannot_write_is_refused() {
        if let Some(dir) = std::env::var_os(LOCKED) {
            let e = prepare(Path::new(&dir)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let locked = base.path().join("state");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        if nix::unistd::geteuid().is_root() {
            // Permission bits do not stop root: ask as an unprivileged user,
            // by running this very test again as `nobody`.
            let run = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "state_dir::tests::a_directory_the_agent_cannot_write_is_refused",
                    "--test-threads=1",
                    "--quiet",
                ])
                .env(LOCKED, &locked)
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "the run as nobody failed ({}):\n{}{}",
                run.status,
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            );
        } else {
            let e = prepare(&locked).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
        }
        // A writable one passes, and a missing one is made.
        let fresh = base.path().join("new").join("state");
        prepare(&fresh).unwrap();
        assert!(fresh.is_dir());
    }
}
