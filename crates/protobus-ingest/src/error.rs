/// Why the ingest service could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<ErrorKind>);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ErrorKind {
    #[error("the contract's descriptors: {0}")]
    Descriptors(String),
    #[error("the contract: {0}")]
    Contract(String),
    #[error("settings: {0}")]
    Settings(String),
    #[error("event rejected: {0}")]
    Rejected(String),
    #[error("gRPC server: {0}")]
    Transport(tonic::transport::Error),
    #[error("gRPC reflection: {0}")]
    Reflection(tonic_reflection::server::Error),
}

// By hand rather than `#[from]`, which would also make each its `source()`:
// the message carries the cause's words already.
impl From<tonic::transport::Error> for ErrorKind {
    fn from(err: tonic::transport::Error) -> Self {
        ErrorKind::Transport(err)
    }
}

impl From<tonic_reflection::server::Error> for ErrorKind {
    fn from(err: tonic_reflection::server::Error) -> Self {
        ErrorKind::Reflection(err)
    }
}

impl<E: Into<ErrorKind>> From<E> for Error {
    fn from(kind: E) -> Self {
        Error(Box::new(kind.into()))
    }
}

impl Error {
    pub(crate) fn descriptors(message: impl std::fmt::Display) -> Self {
        ErrorKind::Descriptors(message.to_string()).into()
    }

    pub(crate) fn contract(message: impl std::fmt::Display) -> Self {
        ErrorKind::Contract(message.to_string()).into()
    }

    pub(crate) fn settings(message: impl Into<String>) -> Self {
        ErrorKind::Settings(message.into()).into()
    }

    pub(crate) fn rejected(rejection: crate::types::Rejection) -> Self {
        ErrorKind::Rejected(format!("{}: {}", rejection.field, rejection.reason)).into()
    }
}
