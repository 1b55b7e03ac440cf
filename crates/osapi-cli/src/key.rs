//! `osapi key generate`: an Ed25519 key pair for signing jobs. The private
//! key (PKCS#8 PEM, mode 0600) goes to `api.server.security.job_signing_key_file`
//! on controllers; the public key (base64) to `agent.security.job_verify_keys`
//! on agents.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use osapi_api::signing::JobSigner;

/// Key commands.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Write a new job-signing key pair: `<out>.key` (private, PKCS#8 PEM,
    /// mode 0600) and `<out>.pub` (public, base64); print the public key.
    Generate {
        /// Path prefix of the two files.
        #[arg(short, long, default_value = "job-signing")]
        out: PathBuf,
    },
}

/// `osapi key …`: writes a job-signing key pair.
pub fn run(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Generate { out } => {
            let signer = JobSigner::generate()?;
            let private = out.with_extension("key");
            let public = out.with_extension("pub");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&private)
                .with_context(|| {
                    format!(
                        "cannot create {} (it must not exist yet)",
                        private.display()
                    )
                })?;
            f.write_all(signer.to_pem()?.as_bytes())
                .with_context(|| format!("cannot write {}", private.display()))?;
            let key = signer.public_key().to_string();
            std::fs::write(&public, format!("{key}\n"))
                .with_context(|| format!("cannot write {}", public.display()))?;
            eprintln!(
                "wrote {} (for api.server.security.job_signing_key_file) and {} (for agent.security.job_verify_keys)",
                private.display(),
                public.display()
            );
            println!("{key}");
            Ok(())
        }
    }
}
