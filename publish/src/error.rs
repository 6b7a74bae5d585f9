use std::path::PathBuf;

/// Why a publication (or reading the current one) failed. Each names the
/// file, command or object involved so the report is actionable.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Fs(#[from] sysutil::fs::FsError),
    #[error("git {args}: {detail}")]
    Git { args: String, detail: String },
    #[error("file path {0:?} is not a plain relative path (no absolute paths, `..`, `.` or empty parts)")]
    BadPath(String),
    #[error("file {0:?} collides with a name the publisher writes itself")]
    Reserved(String),
    #[error("current meta at {what} is not valid")]
    Meta {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("current meta at {what} belongs to image {found:?}, not {expected:?}")]
    ImageMismatch {
        what: String,
        found: String,
        expected: String,
    },
    #[error("image {0:?} is forced into log mode but the round compiled no log-mode profile for it; nothing published over the lever")]
    NoLogVariant(String),
    #[error("{0} keeps no earlier versions (levers act on dir and git targets)")]
    NoHistory(String),
    #[error("{what}: file {file:?} of version {version} is missing")]
    MissingFile {
        what: String,
        version: String,
        file: String,
    },
    #[error("object store")]
    Store(#[from] crate::targets::object_store::StoreError),
    #[error(transparent)]
    Oci(#[from] crate::targets::oci::OciError),
}

impl PublishError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PublishError {
        let path = path.into();
        move |source| PublishError::Io { path, source }
    }
}
