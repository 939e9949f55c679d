use std::path::PathBuf;

/// Why code generation failed. Its `Display` names the file (and for
/// contract errors the line and column) to fix, with the cause's own words:
/// there is no `source()` to print them a second time. As a
/// [`miette::Diagnostic`] a compile error keeps the compiler's labels and
/// source, for a report that shows the line.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct Error(Box<ErrorKind>);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum ErrorKind {
    #[error("OUT_DIR is not set: call protobus_build from a build script or set Builder::out_dir")]
    NoOutDir,
    #[error("no .proto files found under {}", .0.display())]
    NoProtoFiles(PathBuf),
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid contract: {0}")]
    #[diagnostic(forward(0))]
    Compile(protox::Error),
    #[error("{location}: {error}")]
    #[diagnostic(forward(error))]
    CompileAt {
        location: String,
        error: protox::Error,
    },
    #[error("{location}: {message}")]
    Contract { location: String, message: String },
    #[error("generating Rust code failed: {0}")]
    Generate(std::io::Error),
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error(Box::new(kind))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn the_cause_is_said_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err: Error = ErrorKind::Io {
            path: "proto/a.proto".into(),
            error: missing,
        }
        .into();
        assert_eq!(err.to_string(), "proto/a.proto: no such file");
        assert!(
            err.source().is_none(),
            "the cause is in the message already"
        );
    }
}
