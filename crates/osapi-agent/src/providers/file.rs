//! File providers (`file.deploy.execute`, `file.status.get`).
//!
//! Deploy fixes upstream's behaviour: idempotency is checked against the
//! file on disk (content, mode, owner, group), not only against the recorded
//! state; content is written atomically (a temporary file in the same
//! directory, fsync, then rename); mode, owner and group are applied. Status
//! keeps upstream's answers (`missing` without a record, even if a file
//! exists).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Group, User};
use osapi_api::ops::{ContentType, FileDeployParams, FileStatusParams, validate_host_path};
use osapi_api::records::FileState;
use osapi_api::results::{FileDeployResult, FileStatusResult, FileSyncStatus};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::journal::Journal;

use super::{ProviderContext, ProviderError};

/// Mode of a newly created file when the job names none.
const DEFAULT_MODE: u32 = 0o644;

/// `file.deploy.execute`.
pub async fn deploy(
    params: &FileDeployParams,
    ctx: &ProviderContext,
) -> Result<FileDeployResult, ProviderError> {
    let wrap = |e: String| ProviderError(format!("file deploy failed: {e}"));
    validate_host_path(&params.path).map_err(wrap)?;
    let mode = params
        .mode
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(parse_mode)
        .transpose()
        .map_err(wrap)?;
    let uid = params
        .owner
        .as_deref()
        .filter(|o| !o.is_empty())
        .map(resolve_user)
        .transpose()
        .map_err(wrap)?;
    let gid = params
        .group
        .as_deref()
        .filter(|g| !g.is_empty())
        .map(resolve_group)
        .transpose()
        .map_err(wrap)?;

    let name = &params.object_name;
    let read = match params.object_sha256.as_deref() {
        Some(sha256) => ctx.objects.get_version(name, sha256).await,
        None => ctx.objects.get(name).await,
    };
    let (info, object) = read
        .map_err(|e| {
            wrap(format!(
                "cannot read object {name:?} from the file store: {e}"
            ))
        })?
        .ok_or_else(|| wrap(format!("object {name:?} not found in the file store")))?;
    // The job deploys the version it was queued with, or nothing.
    if let Some(pinned) = &params.object_sha256 {
        let held = match info.sha256.as_str() {
            "" => hex::encode(Sha256::digest(&object)),
            known => known.to_string(),
        };
        if held != *pinned {
            return Err(wrap(format!(
                "object {name:?} was replaced after this job was queued (the job deploys the \
                 version with sha256 {pinned}, the file store now holds {held}): deploy it again"
            )));
        }
    }

    let content: Vec<u8> = match params.content_type {
        ContentType::Raw => object.to_vec(),
        ContentType::Template => {
            let source = String::from_utf8(object.to_vec()).map_err(|_| {
                wrap(format!(
                    "object {:?} is not UTF-8 text and cannot be rendered as a template",
                    params.object_name
                ))
            })?;
            let facts = match &ctx.facts {
                Some(facts) => serde_json::to_value(facts.as_ref())
                    .map_err(|e| wrap(format!("cannot encode facts for the template: {e}")))?,
                None => Value::Null,
            };
            let data = serde_json::json!({
                "Vars": params.vars,
                "Facts": facts,
                "Hostname": ctx.hostname,
            });
            // Up to millions of steps: off the async workers.
            super::blocking(move || crate::template::render(&source, &data))
                .await?
                .map_err(|e| wrap(format!("failed to render template: {e}")))?
                .into_bytes()
        }
    };
    let sha256 = hex::encode(Sha256::digest(&content));

    let path = on_host(ctx, &params.path);
    if params.dry_run {
        let shown = params.path.clone();
        let predicted = super::blocking(move || predict(&path, &content, mode, uid, gid, &shown))
            .await?
            .map_err(wrap)?;
        return Ok(FileDeployResult {
            changed: predicted.changed,
            sha256,
            path: params.path.clone(),
            diff: predicted.diff,
            dry_run: true,
        });
    }
    // What was there, for the diff (a missing or unreadable file: empty).
    let before = if params.diff {
        Some((
            tokio::fs::read(&path).await.unwrap_or_default(),
            content.clone(),
        ))
    } else {
        None
    };
    if ctx.config.file_root.is_some()
        && let Some(dir) = path.parent()
    {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| wrap(format!("cannot create {}: {e}", dir.display())))?;
    }
    let journal = ctx.journal.clone();
    let applied = super::blocking(move || apply(&path, &content, mode, uid, gid, Some(&journal)))
        .await?
        .map_err(wrap)?;

    let state = FileState {
        object_name: params.object_name.clone(),
        path: params.path.clone(),
        sha256: sha256.clone(),
        mode: Some(format!("{:04o}", applied.mode)),
        owner: params.owner.clone().filter(|o| !o.is_empty()),
        group: params.group.clone().filter(|g| !g.is_empty()),
        deployed_at: OffsetDateTime::now_utc(),
        content_type: params.content_type,
    };
    ctx.file_state
        .put(&ctx.hostname, state)
        .await
        .map_err(|e| {
            wrap(format!(
                "file written but its state could not be recorded: {e}"
            ))
        })?;

    let diff = match before {
        Some((old, new)) if applied.changed && old != new => {
            Some(unified_diff(&old, &new, &params.path))
        }
        _ => None,
    };
    Ok(FileDeployResult {
        changed: applied.changed,
        sha256,
        path: params.path.clone(),
        diff,
        dry_run: false,
    })
}

/// Longest diff a result carries.
const DIFF_LIMIT: usize = 64 * 1024;

/// A unified diff of `old` to `new` (`--- a<path>` / `+++ b<path>`), cut
/// at 64 KiB; binary content is named, not shown.
pub fn unified_diff(old: &[u8], new: &[u8], path: &str) -> String {
    let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        return format!("Binary files a{path} and b{path} differ\n");
    };
    let mut text = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string();
    if text.len() > DIFF_LIMIT {
        let mut cut = DIFF_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (diff cut at 64 KiB)\n");
    }
    text
}

/// What a deploy would do, without doing it.
struct Prediction {
    changed: bool,
    diff: Option<String>,
}

/// Check mode: the same checks as [`apply`] (a parent directory that must
/// exist, no directory in the way), then whether the content or metadata
/// would change, with the content's diff.
fn predict(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    shown: &str,
) -> Result<Prediction, String> {
    check_parent(path)?;
    let Some(meta) = existing_file(path)? else {
        return Ok(Prediction {
            changed: true,
            diff: Some(unified_diff(b"", content, shown)),
        });
    };
    let old = fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let content_differs = old != content;
    let meta_differs = mode.is_some_and(|m| m != meta.mode() & 0o7777)
        || uid.is_some_and(|u| u != meta.uid())
        || gid.is_some_and(|g| g != meta.gid());
    Ok(Prediction {
        changed: content_differs || meta_differs,
        diff: content_differs.then(|| unified_diff(&old, content, shown)),
    })
}

/// The parent directory of `path` must exist (it is not created).
fn check_parent(path: &Path) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Err(format!("path {:?} has no parent directory", path.display())),
    };
    match fs::metadata(parent) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("{} is not a directory", parent.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(format!(
            "parent directory {} does not exist (it is not created automatically)",
            parent.display()
        )),
        Err(e) => Err(format!("cannot access {}: {e}", parent.display())),
    }
}

/// The entry at `path` when it is a regular file (a symbolic link or
/// anything else is replaced by a deploy); a directory is an error.
fn existing_file(path: &Path) -> Result<Option<fs::Metadata>, String> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(format!("{} is a directory", path.display())),
        Ok(m) if m.is_file() => Ok(Some(m)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot access {}: {e}", path.display())),
    }
}

/// Where a checked host path (absolute, no `..`) is on this machine: under
/// the configured file root, if any.
fn on_host(ctx: &ProviderContext, path: &str) -> PathBuf {
    match &ctx.config.file_root {
        Some(root) => root.join(path.trim_start_matches('/')),
        None => PathBuf::from(path),
    }
}

/// `file.status.get`.
pub async fn status(
    params: &FileStatusParams,
    ctx: &ProviderContext,
) -> Result<FileStatusResult, ProviderError> {
    let wrap = |e: String| ProviderError(format!("file status failed: {e}"));
    validate_host_path(&params.path).map_err(wrap)?;
    let record = ctx
        .file_state
        .get(&ctx.hostname, &params.path)
        .await
        .map_err(|e| wrap(format!("cannot read the deployed-file record: {e}")))?;
    let missing = FileStatusResult {
        path: params.path.clone(),
        status: FileSyncStatus::Missing,
        sha256: None,
        changed: false,
    };
    let Some(record) = record else {
        return Ok(missing);
    };
    let Ok(bytes) = tokio::fs::read(on_host(ctx, &params.path)).await else {
        return Ok(missing);
    };
    let disk_sha = hex::encode(Sha256::digest(&bytes));
    let status = if disk_sha == record.sha256 {
        FileSyncStatus::InSync
    } else {
        FileSyncStatus::Drifted
    };
    Ok(FileStatusResult {
        path: params.path.clone(),
        status,
        sha256: Some(disk_sha),
        changed: false,
    })
}

/// Parses an octal permission: `0644`, `644`, `0o644`, up to `07777`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text
        .strip_prefix("0o")
        .or_else(|| text.strip_prefix("0O"))
        .unwrap_or(text);
    let bad = || format!("invalid mode {text:?}: expected an octal permission such as 0644");
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    let mode = u32::from_str_radix(digits, 8).map_err(|_| bad())?;
    if mode > 0o7777 {
        return Err(bad());
    }
    Ok(mode)
}

/// A user name or numeric uid.
fn resolve_user(owner: &str) -> Result<u32, String> {
    if let Ok(uid) = owner.parse::<u32>() {
        return Ok(uid);
    }
    match User::from_name(owner) {
        Ok(Some(user)) => Ok(user.uid.as_raw()),
        Ok(None) => Err(format!("unknown user {owner:?}")),
        Err(e) => Err(format!("cannot look up user {owner:?}: {}", e.desc())),
    }
}

/// A group name or numeric gid.
fn resolve_group(group: &str) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    match Group::from_name(group) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("unknown group {group:?}")),
        Err(e) => Err(format!("cannot look up group {group:?}: {}", e.desc())),
    }
}

/// What [`apply`] did.
struct Applied {
    changed: bool,
    mode: u32,
}

/// Makes the file at `path` hold `content` with the requested metadata.
/// Unrequested mode/owner/group keep the existing file's (mode 0644 for a
/// new file).
fn apply(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    journal: Option<&Journal>,
) -> Result<Applied, String> {
    check_parent(path)?;
    let existing = existing_file(path)?;

    let want_mode = mode
        .or_else(|| existing.as_ref().map(|m| m.mode() & 0o7777))
        .unwrap_or(DEFAULT_MODE);
    let want_uid = uid.or_else(|| existing.as_ref().map(|m| m.uid()));
    let want_gid = gid.or_else(|| existing.as_ref().map(|m| m.gid()));

    if let Some(meta) = &existing {
        let same_content = meta.len() == content.len() as u64
            && fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
                == content;
        if same_content {
            let uid_ok = want_uid.is_none_or(|u| u == meta.uid());
            let gid_ok = want_gid.is_none_or(|g| g == meta.gid());
            let mode_ok = meta.mode() & 0o7777 == want_mode;
            if uid_ok && gid_ok && mode_ok {
                return Ok(Applied {
                    changed: false,
                    mode: want_mode,
                });
            }
            // Only metadata differs. chown first: it may clear set-id bits.
            if !(uid_ok && gid_ok) {
                std::os::unix::fs::chown(path, want_uid, want_gid)
                    .map_err(|e| format!("cannot change owner of {}: {e}", path.display()))?;
            }
            fs::set_permissions(path, fs::Permissions::from_mode(want_mode))
                .map_err(|e| format!("cannot change mode of {}: {e}", path.display()))?;
            return Ok(Applied {
                changed: true,
                mode: want_mode,
            });
        }
    }

    write_atomically(path, content, want_mode, want_uid, want_gid, journal)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Applied {
        changed: true,
        mode: want_mode,
    })
}

/// Temporary files being written by any agent of this process.
static TEMP_IN_USE: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<PathBuf>>> =
    std::sync::LazyLock::new(Default::default);

/// How old a stranger's temporary file must be before it counts as left
/// behind (another process may be writing it).
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(60);

/// Marks a temporary file as being written until dropped.
struct InUse(PathBuf);

impl InUse {
    fn new(path: &Path) -> InUse {
        crate::runtime::lock(&TEMP_IN_USE).insert(path.to_path_buf());
        InUse(path.to_path_buf())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        crate::runtime::lock(&TEMP_IN_USE).remove(&self.0);
    }
}

/// When each directory written to was last searched for stale temporary
/// files: a directory is searched at most once per `STALE_TEMP` (reading a
/// large directory at every write would cost more than the write).
static SEARCHED: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<PathBuf, std::time::Instant>>,
> = std::sync::LazyLock::new(Default::default);

/// True when `dir` is due for a search for stale temporary files.
fn search_due(dir: &Path) -> bool {
    let mut searched = crate::runtime::lock(&SEARCHED);
    let now = std::time::Instant::now();
    if searched
        .get(dir)
        .is_some_and(|t| now.duration_since(*t) < STALE_TEMP)
    {
        return false;
    }
    if searched.len() >= 4096 {
        searched.retain(|_, t| now.duration_since(*t) < STALE_TEMP);
    }
    searched.insert(dir.to_path_buf(), now);
    true
}

/// True for our temporary files' names: `.<name>.osapi-<32 hex>.tmp`.
fn is_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && name
            .strip_suffix(".tmp")
            .and_then(|n| n.rsplit_once(".osapi-"))
            .is_some_and(|(_, id)| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Removes temporary files of interrupted writes from `dir`: ours that no
/// write of this process uses and that are older than a minute.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry.file_name().to_str().is_some_and(is_temp_name)
            && !crate::runtime::lock(&TEMP_IN_USE).contains(&path)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > STALE_TEMP));
        if stale && fs::remove_file(&path).is_ok() {
            tracing::info!(file = %path.display(), "removed a temporary file left by an interrupted write");
        }
    }
}

/// Replaces `path` with `content` atomically: a uniquely named temporary
/// file in the same directory is written, given `mode` and (when set) owner
/// and group, synced, then renamed over `path`. The temporary file is
/// removed on failure, recorded in `journal` while it exists (a restart
/// after a crash removes it), and temporary files that interrupted writes
/// left in the directory are removed first (searched for at most once a
/// minute per directory).
pub(crate) fn write_atomically(
    path: &Path,
    content: &[u8],
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    journal: Option<&Journal>,
) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if search_due(dir) {
        remove_stale_temp_files(dir);
    }
    let tmp = dir.join(format!(
        ".{name}.osapi-{}.tmp",
        uuid::Uuid::new_v4().simple()
    ));
    let _in_use = InUse::new(&tmp);
    let _recorded = journal.map(|j| j.temp_file(&tmp));
    let result = (|| {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(content)?;
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::fchown(&file, uid, gid)?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; not every filesystem supports this.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{ProviderConfig, ProviderContext};
    use bytes::Bytes;
    use osapi_api::records::Facts;
    use osapi_bus::memory::{MemoryFileStateStore, MemoryObjectStore};
    use osapi_bus::{FileStateStore, ObjectStore};
    use std::sync::Arc;

    struct Fixture {
        ctx: ProviderContext,
        objects: Arc<MemoryObjectStore>,
        state: Arc<MemoryFileStateStore>,
        dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let objects = Arc::new(MemoryObjectStore::default());
        let state = Arc::new(MemoryFileStateStore::new());
        let ctx = ProviderContext {
            hostname: "web-01".into(),
            labels: Default::default(),
            facts: Some(Arc::new(Facts {
                architecture: "x86_64".into(),
                ..Default::default()
            })),
            objects: objects.clone(),
            file_state: state.clone(),
            config: Arc::new(ProviderConfig::default()),
            journal: Default::default(),
        };
        Fixture {
            ctx,
            objects,
            state,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn params(object: &str, path: &Path) -> FileDeployParams {
        FileDeployParams {
            object_name: object.into(),
            path: path.display().to_string(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn check_mode_predicts_with_a_diff_and_writes_nothing() {
        let f = fixture();
        f.objects
            .put("app", "raw", Bytes::from_static(b"port 80\nhost a\n"))
            .await
            .unwrap();
        let path = f.dir.path().join("app.conf");
        let mut p = params("app", &path);
        p.dry_run = true;
        // Missing: would be created, the diff shows every line added.
        let r = deploy(&p, &f.ctx).await.unwrap();
        assert!(r.changed && r.dry_run);
        let diff = r.diff.unwrap();
        assert!(diff.contains("+port 80\n+host a\n"), "{diff}");
        assert!(!path.exists(), "check mode wrote the file");
        // Different content: a unified diff, old to new.
        fs::write(&path, "port 81\nhost a\n").unwrap();
        let r = deploy(&p, &f.ctx).await.unwrap();
        let diff = r.diff.unwrap();
        let shown = path.display().to_string();
        assert!(
            diff.starts_with(&format!("--- a{shown}\n+++ b{shown}\n")),
            "{diff}"
        );
        assert!(diff.contains("-port 81\n+port 80\n host a\n"), "{diff}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "port 81\nhost a\n");
        // Same content, another mode: would change, no content diff.
        fs::write(&path, "port 80\nhost a\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        p.mode = Some("0644".into());
        let r = deploy(&p, &f.ctx).await.unwrap();
        assert!(r.changed && r.diff.is_none());
        assert_eq!(mode_of(&path), 0o600);
        p.mode = None;
        let r = deploy(&p, &f.ctx).await.unwrap();
        assert!(!r.changed);
        // The same errors as a real deploy.
        let mut missing = params("app", &f.dir.path().join("no/dir/app.conf"));
        missing.dry_run = true;
        assert!(deploy(&missing, &f.ctx).await.is_err());
        // Nothing was recorded as deployed.
        assert_eq!(status_of(&f, &path).await.status, FileSyncStatus::Missing);
    }

    #[tokio::test]
    async fn a_real_deploy_returns_the_diff_when_asked() {
        let f = fixture();
        f.objects
            .put("app", "raw", Bytes::from_static(b"v2\n"))
            .await
            .unwrap();
        let path = f.dir.path().join("app.conf");
        fs::write(&path, "v1\n").unwrap();
        let mut p = params("app", &path);
        p.diff = true;
        let r = deploy(&p, &f.ctx).await.unwrap();
        assert!(r.changed && !r.dry_run);
        assert!(r.diff.unwrap().contains("-v1\n+v2\n"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "v2\n");
        // Nothing changed: no diff.
        assert!(deploy(&p, &f.ctx).await.unwrap().diff.is_none());
        // Binary content is named, and long diffs are cut.
        assert_eq!(
            unified_diff(&[0xff, 0], b"x", "/f"),
            "Binary files a/f and b/f differ\n"
        );
        let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let cut = unified_diff(b"", big.as_bytes(), "/f");
        assert!(cut.len() < 70 * 1024 && cut.ends_with("(diff cut at 64 KiB)\n"));
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    async fn status_of(f: &Fixture, path: &Path) -> FileStatusResult {
        status(
            &FileStatusParams {
                path: path.display().to_string(),
            },
            &f.ctx,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_file_root_confines_deploys_and_status() {
        let mut f = fixture();
        let root = f.dir.path().join("root");
        f.ctx.config = Arc::new(ProviderConfig {
            file_root: Some(root.clone()),
            ..ProviderConfig::default()
        });
        f.objects
            .put("motd", "raw", Bytes::from_static(b"hello\n"))
            .await
            .unwrap();
        // A path under /etc: written under the root, directories created,
        // reported as asked.
        let p = FileDeployParams {
            object_name: "motd".into(),
            path: "/etc/osapi-sandbox-test/motd".into(),
            ..Default::default()
        };
        let r = deploy(&p, &f.ctx).await.unwrap();
        assert!(r.changed);
        assert_eq!(r.path, "/etc/osapi-sandbox-test/motd");
        assert_eq!(
            fs::read(root.join("etc/osapi-sandbox-test/motd")).unwrap(),
            b"hello\n"
        );
        assert!(!Path::new("/etc/osapi-sandbox-test").exists());
        let s = status(
            &FileStatusParams {
                path: p.path.clone(),
            },
            &f.ctx,
        )
        .await
        .unwrap();
        assert_eq!(s.status, FileSyncStatus::InSync);
        // `..` cannot climb out of the root.
        let out = FileDeployParams {
            path: "/../outside".into(),
            ..p
        };
        assert!(deploy(&out, &f.ctx).await.is_err());
    }

    #[tokio::test]
    async fn raw_deploy_is_idempotent_and_repairs_drift() {
        let f = fixture();
        f.objects
            .put("app.conf", "raw", Bytes::from_static(b"key=1\n"))
            .await
            .unwrap();
        let path = f.dir.path().join("app.conf");
        let p = params("app.conf", &path);

        assert_eq!(status_of(&f, &path).await.status, FileSyncStatus::Missing);

        let first = deploy(&p, &f.ctx).await.unwrap();
        assert!(first.changed);
        assert_eq!(first.sha256, hex::encode(Sha256::digest(b"key=1\n")));
        assert_eq!(first.path, p.path);
        assert_eq!(fs::read(&path).unwrap(), b"key=1\n");
        assert_eq!(mode_of(&path), 0o644);
        let record = f.state.get("web-01", &p.path).await.unwrap().unwrap();
        assert_eq!(record.sha256, first.sha256);
        assert_eq!(record.mode.as_deref(), Some("0644"));
        assert_eq!(record.object_name, "app.conf");

        let second = deploy(&p, &f.ctx).await.unwrap();
        assert!(!second.changed);
        assert_eq!(second.sha256, first.sha256);

        let s = status_of(&f, &path).await;
        assert_eq!(s.status, FileSyncStatus::InSync);
        assert_eq!(s.sha256.as_deref(), Some(first.sha256.as_str()));

        fs::write(&path, b"key=2\n").unwrap();
        let s = status_of(&f, &path).await;
        assert_eq!(s.status, FileSyncStatus::Drifted);
        assert_eq!(s.sha256, Some(hex::encode(Sha256::digest(b"key=2\n"))));

        let third = deploy(&p, &f.ctx).await.unwrap();
        assert!(third.changed, "drift on disk must be repaired");
        assert_eq!(fs::read(&path).unwrap(), b"key=1\n");
        assert_eq!(status_of(&f, &path).await.status, FileSyncStatus::InSync);

        fs::remove_file(&path).unwrap();
        let s = status_of(&f, &path).await;
        assert_eq!(s.status, FileSyncStatus::Missing);
        assert_eq!(s.sha256, None);
        assert!(deploy(&p, &f.ctx).await.unwrap().changed);

        // Only the target is in the directory: no temporary files left.
        assert_eq!(fs::read_dir(f.dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn template_deploy() {
        let f = fixture();
        f.objects
            .put(
                "nginx.tmpl",
                "template",
                Bytes::from_static(
                    b"listen {{ .Vars.port }}; # {{ .Hostname }} {{ .Facts.architecture }}\n",
                ),
            )
            .await
            .unwrap();
        let path = f.dir.path().join("nginx.conf");
        let mut p = params("nginx.tmpl", &path);
        p.content_type = ContentType::Template;
        p.vars.insert("port".into(), Value::from(8080));

        let first = deploy(&p, &f.ctx).await.unwrap();
        assert!(first.changed);
        let expected = "listen 8080; # web-01 x86_64\n";
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
        assert_eq!(
            first.sha256,
            hex::encode(Sha256::digest(expected.as_bytes()))
        );
        let second = deploy(&p, &f.ctx).await.unwrap();
        assert!(!second.changed);

        p.vars.insert("port".into(), Value::from(9090));
        assert!(deploy(&p, &f.ctx).await.unwrap().changed);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "listen 9090; # web-01 x86_64\n"
        );

        // Raw content type writes the template text verbatim.
        p.content_type = ContentType::Raw;
        deploy(&p, &f.ctx).await.unwrap();
        assert!(fs::read_to_string(&path).unwrap().starts_with("listen {{"));
    }

    #[tokio::test]
    async fn mode_owner_and_metadata_only_changes() {
        let f = fixture();
        f.objects
            .put("secret", "raw", Bytes::from_static(b"s3cret"))
            .await
            .unwrap();
        let path = f.dir.path().join("secret");
        let mut p = params("secret", &path);
        p.mode = Some("0600".into());
        p.owner = Some("0".into());
        p.group = Some("0".into());

        assert!(deploy(&p, &f.ctx).await.unwrap().changed);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
        assert!(!deploy(&p, &f.ctx).await.unwrap().changed);

        // Same bytes, different mode: metadata-only change.
        p.mode = Some("0o640".into());
        assert!(deploy(&p, &f.ctx).await.unwrap().changed);
        assert_eq!(mode_of(&path), 0o640);
        assert!(!deploy(&p, &f.ctx).await.unwrap().changed);

        // No mode given: the existing one is kept.
        p.mode = None;
        assert!(!deploy(&p, &f.ctx).await.unwrap().changed);
        assert_eq!(mode_of(&path), 0o640);

        // Names work too.
        p.owner = Some("root".into());
        p.group = Some("root".into());
        assert!(!deploy(&p, &f.ctx).await.unwrap().changed);

        // Existing mode survives a content change.
        f.objects
            .put("secret", "raw", Bytes::from_static(b"new"))
            .await
            .unwrap();
        assert!(deploy(&p, &f.ctx).await.unwrap().changed);
        assert_eq!(mode_of(&path), 0o640);
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[tokio::test]
    async fn symlink_is_replaced_not_followed() {
        let f = fixture();
        f.objects
            .put("o", "raw", Bytes::from_static(b"content"))
            .await
            .unwrap();
        let victim = f.dir.path().join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let link = f.dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(deploy(&params("o", &link), &f.ctx).await.unwrap().changed);
        assert!(fs::symlink_metadata(&link).unwrap().is_file());
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }

    #[tokio::test]
    async fn a_pinned_version_is_deployed_or_nothing() {
        let f = fixture();
        let v1 = f
            .objects
            .put("motd", "raw", Bytes::from_static(b"one\n"))
            .await
            .unwrap();
        let to = f.dir.path().join("motd");
        let pinned = |sha: &str| FileDeployParams {
            object_sha256: Some(sha.into()),
            ..params("motd", &to)
        };
        assert!(deploy(&pinned(&v1.sha256), &f.ctx).await.unwrap().changed);
        assert_eq!(fs::read(&to).unwrap(), b"one\n");
        f.objects
            .put("motd", "raw", Bytes::from_static(b"two\n"))
            .await
            .unwrap();
        let e = deploy(&pinned(&v1.sha256), &f.ctx).await.unwrap_err();
        assert!(
            e.0.contains("was replaced after this job was queued"),
            "{e:?}"
        );
        assert_eq!(fs::read(&to).unwrap(), b"one\n", "nothing written");
    }

    #[tokio::test]
    async fn deploy_errors() {
        let f = fixture();
        f.objects
            .put("o", "raw", Bytes::from_static(b"x"))
            .await
            .unwrap();
        let err = |p: FileDeployParams| {
            let ctx = f.ctx.clone();
            async move { deploy(&p, &ctx).await.unwrap_err().0 }
        };

        let missing_parent = f.dir.path().join("no/such/dir/file");
        let e = err(params("o", &missing_parent)).await;
        assert!(
            e.starts_with("file deploy failed: parent directory "),
            "{e}"
        );
        assert!(e.contains("no/such/dir"), "{e}");

        let mut p = params("o", Path::new("/x"));
        p.path = "relative/file".into();
        assert_eq!(
            err(p).await,
            "file deploy failed: path \"relative/file\" must be absolute"
        );

        let e = err(params("nope", &f.dir.path().join("f"))).await;
        assert_eq!(
            e,
            "file deploy failed: object \"nope\" not found in the file store"
        );

        let mut p = params("o", &f.dir.path().join("f"));
        p.mode = Some("rw-r--r--".into());
        assert_eq!(
            err(p).await,
            "file deploy failed: invalid mode \"rw-r--r--\": expected an octal permission such as 0644"
        );

        let mut p = params("o", &f.dir.path().join("f"));
        p.owner = Some("no-such-user-osapi".into());
        assert_eq!(
            err(p).await,
            "file deploy failed: unknown user \"no-such-user-osapi\""
        );

        let mut p = params("o", &f.dir.path().join("f"));
        p.group = Some("no-such-group-osapi".into());
        assert_eq!(
            err(p).await,
            "file deploy failed: unknown group \"no-such-group-osapi\""
        );

        let e = err(params("o", f.dir.path())).await;
        assert!(e.ends_with("is a directory"), "{e}");

        f.objects
            .put(
                "bad.tmpl",
                "template",
                Bytes::from_static(b"x {{ .Vars.port"),
            )
            .await
            .unwrap();
        let mut p = params("bad.tmpl", &f.dir.path().join("f"));
        p.content_type = ContentType::Template;
        let e = err(p).await;
        assert!(
            e.starts_with(
                "file deploy failed: failed to render template: failed to parse template:"
            ),
            "{e}"
        );

        f.objects
            .put("binary", "template", Bytes::from_static(b"\xff\xfe"))
            .await
            .unwrap();
        let mut p = params("binary", &f.dir.path().join("f"));
        p.content_type = ContentType::Template;
        assert_eq!(
            err(p).await,
            "file deploy failed: object \"binary\" is not UTF-8 text and cannot be rendered as a template"
        );

        // Nothing was recorded for failed deploys.
        assert!(f.state.is_empty());
    }

    #[tokio::test]
    async fn status_without_record_is_missing() {
        let f = fixture();
        let path = f.dir.path().join("exists");
        fs::write(&path, b"hello").unwrap();
        let s = status_of(&f, &path).await;
        assert_eq!(s.status, FileSyncStatus::Missing);
        let e = status(&FileStatusParams { path: "rel".into() }, &f.ctx)
            .await
            .unwrap_err();
        assert!(e.0.starts_with("file status failed: path"), "{e}");
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        assert_eq!(parse_mode("4755"), Ok(0o4755));
        for bad in ["", "0o", "888", "0x1ff", "77777", "-644", " 644"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
    }
}
