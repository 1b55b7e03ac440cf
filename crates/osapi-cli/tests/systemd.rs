//! The systemd units in `docs/systemd` pass `systemd-analyze verify`
//! (unknown keys and sections, bad values, missing binaries), with their
//! binaries pointed at the ones this build made; skipped, saying so, where
//! `systemd-analyze` is not installed.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::path::{Path, PathBuf};
use std::process::Command;

const UNITS: [&str; 2] = ["osapi-api.service", "osapi-agent.service"];

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/systemd")
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(docs().join(name)).unwrap()
}

/// `systemd-analyze`, when installed.
fn analyze() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join("systemd-analyze"))
        .find(|p| p.is_file())
}

/// The unit with its installed binary paths replaced by this build's (verify
/// checks that `ExecStart=` names an executable); panics when a path to
/// replace is missing, so the rewrite cannot silently do nothing.
fn with_built_binaries(text: &str) -> String {
    let mut out = text.to_string();
    for (installed, built) in [
        (
            "/usr/local/bin/osapi-agent ",
            concat!(env!("CARGO_BIN_EXE_osapi-agent"), " "),
        ),
        (
            "/usr/local/bin/osapi ",
            concat!(env!("CARGO_BIN_EXE_osapi"), " "),
        ),
    ] {
        out = out.replace(
            &format!("ExecStart={installed}"),
            &format!("ExecStart={built}"),
        );
    }
    assert!(
        !out.lines()
            .any(|l| l.starts_with("ExecStart=/usr/local/bin/")),
        "an ExecStart= was not rewritten:\n{out}"
    );
    out
}

/// Runs `systemd-analyze verify` on `units` (name, text) written to a temp
/// dir; returns success and the lines of its output that concern them.
/// Lines about other units (targets a container lacks …) are the
/// environment's, not ours.
fn verify(analyze: &Path, units: &[(&str, String)]) -> (bool, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, text) in units {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .args(&paths)
        // No colours or pager, in whatever terminal the tests run.
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = text
        .lines()
        .filter(|l| units.iter().any(|(name, _)| l.contains(name)))
        .map(str::to_string)
        .collect();
    (out.status.success(), ours)
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let Some(analyze) = analyze() else {
        println!("systemd-analyze is not installed: the units are not verified");
        return;
    };
    let units: Vec<(&str, String)> = UNITS
        .iter()
        .map(|name| (*name, with_built_binaries(&unit(name))))
        .collect();
    let (ok, complaints) = verify(&analyze, &units);
    assert!(ok, "systemd-analyze verify failed: {complaints:#?}");
    assert!(complaints.is_empty(), "{complaints:#?}");

    // The check above sees mistakes: an unknown key, an unknown section and
    // a missing binary are each reported.
    let broken = [
        (
            "Restart=on-failure",
            "Restart=on-failure\nRestartOnFailure=yes",
        ),
        ("[Install]", "[Instal]"),
        (env!("CARGO_BIN_EXE_osapi"), "/nonexistent/osapi"),
    ];
    for (from, to) in broken {
        let text = units[0].1.replacen(from, to, 1);
        assert_ne!(text, units[0].1, "{from} is in the unit");
        let (ok, complaints) = verify(&analyze, &[(UNITS[0], text)]);
        assert!(
            !ok || !complaints.is_empty(),
            "{to:?} went unnoticed by systemd-analyze verify"
        );
    }
}

/// What the operator relies on, read from the units themselves.
#[test]
fn units_say_what_the_readme_promises() {
    let has = |text: &str, line: &str| text.lines().any(|l| l.trim() == line);
    let api = unit("osapi-api.service");
    for line in [
        "ExecStart=/usr/local/bin/osapi --osapi-file /etc/osapi/osapi.yaml api server start",
        "User=osapi",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "KillMode=mixed",
        "LimitNOFILE=65536",
        "WantedBy=multi-user.target",
    ] {
        assert!(has(&api, line), "osapi-api.service lacks {line}");
    }
    let agent = unit("osapi-agent.service");
    for line in [
        "ExecStart=/usr/local/bin/osapi-agent --osapi-file /etc/osapi/osapi.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=osapi",
        "Restart=on-failure",
        "KillMode=mixed",
        "LimitNOFILE=65536",
        "WantedBy=multi-user.target",
    ] {
        assert!(has(&agent, line), "osapi-agent.service lacks {line}");
    }
    // The agent runs jobs' commands as root: no user, no sandbox that the
    // commands would inherit.
    for key in [
        "User=",
        "DynamicUser=",
        "ProtectSystem=",
        "NoNewPrivileges=",
        "PrivateTmp=",
        "ProtectHome=",
        "SystemCallFilter=",
    ] {
        assert!(
            !agent.lines().any(|l| l.starts_with(key)),
            "osapi-agent.service sets {key}"
        );
    }
    // The configuration the units name is the one `osapi` reads: both
    // binaries accept --osapi-file.
    for bin in [
        env!("CARGO_BIN_EXE_osapi"),
        env!("CARGO_BIN_EXE_osapi-agent"),
    ] {
        let out = Command::new(bin).arg("--help").output().unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--osapi-file"),
            "{bin}"
        );
    }
}
