use std::collections::HashMap;

use miette::Diagnostic;

/// Why a schema could not be compiled: `file:line:column: message`, as the
/// compiler reported it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<ErrorKind>);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ErrorKind {
    #[error("{location}: {error}")]
    Located {
        location: String,
        error: protox::Error,
    },
    #[error("{0}")]
    Compile(protox::Error),
}

impl Error {
    /// Where the problem is, as `file:line:column`, when the compiler said.
    pub fn location(&self) -> Option<&str> {
        match &*self.0 {
            ErrorKind::Located { location, .. } => Some(location),
            ErrorKind::Compile(_) => None,
        }
    }

    /// Adds the line and column of the compiler's first label, from the sources compiled.
    pub(crate) fn compile<S: AsRef<str>>(err: protox::Error, sources: &HashMap<String, S>) -> Self {
        let located = err.file().and_then(|file| {
            let offset = err.labels()?.next()?.offset();
            protobus_contract::Location::at_offset(file, sources.get(file)?.as_ref(), offset)
                .map(|at| at.to_string())
        });
        Error(Box::new(match located {
            Some(location) => ErrorKind::Located {
                location,
                error: err,
            },
            None => ErrorKind::Compile(err),
        }))
    }
}
