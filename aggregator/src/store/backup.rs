//! Backup and restore of the embedded store (`sandmine store backup`,
//! `sandmine store restore`; docs/STORE.md, "Backup and restore").
//!
//! A backup is `VACUUM INTO` a new file: SQLite copies the database as of
//! one read transaction, so it is consistent while an aggregator or
//! `standalone` keeps inserting (WAL: the reader blocks no writer), and
//! every envelope is in it with all its rows or not at all (each insert is
//! one transaction, ledger included). A restore checks the file before it
//! touches the store: it opens, `PRAGMA integrity_check` says `ok`, and its
//! `schema_migrations` are all migrations this binary knows; then the
//! store file is replaced by rename, never rewritten in place.

use super::sql;
use super::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a backup or a checked backup holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    /// Bytes of the backup file.
    pub bytes: u64,
    /// The highest applied migration.
    pub migration: u32,
    /// Envelopes in its ledger (`messages`).
    pub messages: u64,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Embedded(format!("cannot {what} {}: {e}", path.display()))
}

fn utf8(path: &Path) -> Result<&str, StoreError> {
    path.to_str()
        .ok_or_else(|| StoreError::Embedded(format!("{} is not a UTF-8 path", path.display())))
}

/// Creates `path` (which must not exist) empty, mode 0600.
fn create_new_private(path: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(sysutil::fs::PRIVATE_FILE)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                StoreError::Embedded(format!(
                    "{} exists: a backup never overwrites a file (choose a new name)",
                    path.display()
                ))
            } else {
                io("create", path, e)
            }
        })
}

/// Copies the store at `store` into the new file `to` (refused if `to`
/// exists), consistent as of one moment, mode 0600, synced to disk.
pub fn backup(store: &Path, to: &Path) -> Result<BackupInfo, StoreError> {
    if !store.exists() {
        return Err(StoreError::Embedded(format!(
            "no embedded store at {} (see store.embedded.path)",
            store.display()
        )));
    }
    let to_text = utf8(to)?;
    // Created empty first, exclusively: no race with another file of that
    // name, and the mode is 0600 before a byte is written. VACUUM INTO
    // accepts an empty file.
    drop(create_new_private(to)?);
    let result = (|| {
        let conn = Connection::open_with_flags(store, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(sqlite(store))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sqlite(store))?;
        conn.execute("VACUUM INTO ?1", [to_text])
            .map_err(sqlite(store))?;
        drop(conn);
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("sync", to, e))?;
        sysutil::fs::sync_dir(to.parent().unwrap_or(Path::new(".")))
            .map_err(|e| StoreError::Embedded(sysutil::error_chain(&e)))?;
        check(to)
    })();
    if result.is_err() {
        // Not a backup: leave nothing that looks like one.
        let _ = std::fs::remove_file(to);
    }
    result
}

/// Checks that `file` is a store this binary can use: it opens read-only,
/// passes `PRAGMA integrity_check`, and records only known migrations.
pub fn check(file: &Path) -> Result<BackupInfo, StoreError> {
    let bad = |why: String| {
        StoreError::Embedded(format!(
            "{} is not a usable store backup: {why}",
            file.display()
        ))
    };
    let meta = std::fs::metadata(file).map_err(|e| io("read", file, e))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| bad(e.to_string()))?;
    let verdict: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| bad(e.to_string()))?;
    if verdict != ["ok"] {
        return Err(bad(format!(
            "integrity check: {}",
            verdict.into_iter().take(3).collect::<Vec<_>>().join("; ")
        )));
    }
    let versions: Vec<u32> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .and_then(|mut st| {
            st.query_map([], |r| r.get::<_, u32>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| bad(format!("no sandmine schema ({e})")))?;
    let known: Vec<u32> = sql::SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
    if let Some(v) = versions.iter().find(|v| !known.contains(v)) {
        return Err(bad(format!(
            "it has migration {v}, which this sandmine does not know (it knows {}): restore it with the sandmine that wrote it",
            known
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let Some(&migration) = versions.last() else {
        return Err(bad("no migration recorded".into()));
    };
    let messages: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .map_err(|e| bad(format!("no ledger ({e})")))?;
    Ok(BackupInfo {
        bytes: meta.len(),
        migration,
        messages: messages.max(0) as u64,
    })
}

/// Replaces the store at `store` by the backup `from`, after [`check`].
/// Refused while `store` exists unless `force`, and (with `force`) while
/// another process has the store open. The store's next open applies any
/// migration the backup lacks.
pub fn restore(from: &Path, store: &Path, force: bool) -> Result<BackupInfo, StoreError> {
    let info = check(from)?;
    let exists = store.exists();
    if exists && !force {
        return Err(StoreError::Embedded(format!(
            "{} exists: restoring replaces it and everything stored since the backup (stop the aggregator, then add --force)",
            store.display()
        )));
    }
    if let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) {
        sysutil::fs::create_private_dir(dir)
            .map_err(|e| StoreError::Embedded(sysutil::error_chain(&e)))?;
    }
    let dir = store.parent().unwrap_or(Path::new("."));
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store.db".into());
    let tmp: PathBuf = dir.join(format!(".{name}.restore-{}", std::process::id()));
    let mut out = create_new_private(&tmp)?;
    let copied = (|| {
        let mut src = std::fs::File::open(from).map_err(|e| io("read", from, e))?;
        std::io::copy(&mut src, &mut out).map_err(|e| io("write", &tmp, e))?;
        out.sync_all().map_err(|e| io("sync", &tmp, e))?;
        // The copy is checked too: what is renamed is what was verified.
        check(&tmp)?;
        if exists {
            release_wal(store)?;
        }
        std::fs::rename(&tmp, store).map_err(|e| io("replace", store, e))?;
        sysutil::fs::sync_dir(dir).map_err(|e| StoreError::Embedded(sysutil::error_chain(&e)))
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied?;
    Ok(info)
}

/// Before the store file is replaced: its write-ahead log must not
/// outlive it (SQLite would replay the old store's log into the new file).
/// Leaving WAL mode checkpoints and deletes the log, and needs the store
/// to ourselves: if another connection holds it, the restore is refused.
/// A store too damaged to open has its `-wal` and `-shm` removed instead.
fn release_wal(store: &Path) -> Result<(), StoreError> {
    let in_use = || {
        StoreError::Embedded(format!(
            "{} is in use by another process (stop the aggregator or standalone first)",
            store.display()
        ))
    };
    let mode =
        Connection::open_with_flags(store, OpenFlags::SQLITE_OPEN_READ_WRITE).and_then(|c| {
            c.busy_timeout(Duration::from_secs(2))?;
            c.query_row("PRAGMA journal_mode = DELETE", [], |r| {
                r.get::<_, String>(0)
            })
        });
    match mode {
        Ok(m) if m.eq_ignore_ascii_case("delete") => Ok(()),
        Ok(_) => Err(in_use()),
        Err(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Err(in_use())
        }
        Err(e) => {
            log::warn!(
                "{}: cannot open it ({e}); its -wal and -shm files are removed with it",
                store.display()
            );
            for suffix in ["-wal", "-shm"] {
                let mut p = store.as_os_str().to_owned();
                p.push(suffix);
                let p = PathBuf::from(p);
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("remove", &p, e)),
                }
            }
            Ok(())
        }
    }
}
