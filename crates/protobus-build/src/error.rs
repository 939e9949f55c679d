use std::path::PathBuf;

/// Why code generation failed. Its `Display` names the file (and for
/// contract errors the line and column) to fix.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<ErrorKind>);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ErrorKind {
    #[error("OUT_DIR is not set: call protobus_build from a build script or set Builder::out_dir")]
    NoOutDir,
    #[error("no .proto files found under {}", .0.display())]
    NoProtoFiles(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid contract: {0}")]
    Compile(#[source] protox::Error),
    #[error("{location}: {source}")]
    CompileAt {
        location: String,
        source: protox::Error,
    },
    #[error("{location}: {message}")]
    Contract { location: String, message: String },
    #[error("generating Rust code failed: {0}")]
    Generate(#[source] std::io::Error),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error(Box::new(kind))
    }
}
