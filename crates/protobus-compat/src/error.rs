/// Why a schema could not be compiled. `Display` carries the compiler's
/// message with the file name and line:column.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<ErrorKind>);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ErrorKind {
    #[error("{0}")]
    Compile(#[from] protox::Error),
}

impl Error {
    pub(crate) fn compile(err: protox::Error) -> Self {
        Error(Box::new(ErrorKind::Compile(err)))
    }
}
