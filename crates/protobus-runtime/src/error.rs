use std::fmt;

/// Why a Protobus runtime operation failed. Its `Display` says what to do.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<ErrorKind>);

/// The kinds of [`Error`], for callers that react differently to each.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The schema registry refused the request (unknown id, invalid or incompatible schema).
    #[error("schema registry: {0}")]
    Registry(String),
    /// The schema registry could not be reached or was unavailable; retrying may help.
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// Kafka refused the record; it was not written.
    #[error("kafka: {0}")]
    Kafka(rdkafka::error::KafkaError),
    /// The delivery timed out or its outcome is otherwise unknown: the record
    /// may or may not be in Kafka.
    #[error("delivery outcome unknown (the record may have been written): {0}")]
    OutcomeUnknown(rdkafka::error::KafkaError),
    /// The idempotent producer hit a fatal error (librdkafka's reason) and
    /// was replaced by a new one. Records in flight at that moment may or may
    /// not be in Kafka: resend them with the same event id.
    #[error(
        "the producer hit a fatal error and was replaced; the record may or may not have been written: {0}"
    )]
    ProducerFatal(String),
    /// The event's key field is not set.
    #[error("event {event} has no key: field `{field}` is unset or empty")]
    MissingKey {
        /// The event type.
        event: &'static str,
        /// The key field path.
        field: &'static str,
    },
    /// The record (payload, key and headers) is larger than the producer's
    /// `message.max.bytes`: nothing was written, and a retry cannot succeed.
    #[error(
        "the record takes {bytes} bytes with its key and headers, more than the producer's message.max.bytes of {limit}; nothing was written"
    )]
    TooLarge {
        /// What the record takes, in bytes.
        bytes: usize,
        /// The producer's `message.max.bytes`.
        limit: usize,
    },
    /// librdkafka's send queue is full: nothing was written; slow down.
    #[error("the producer's queue is full; nothing was written")]
    QueueFull,
    /// The batch holds as many events as it was made for: await it and
    /// send the rest in another.
    #[error("the batch holds its {0} events already; await it and send the rest in another")]
    BatchFull(usize),
    /// A setting is missing or invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// The consumer cannot go on: librdkafka raised a fatal error, or the
    /// cluster refused it in a way no retry fixes (authentication, or
    /// authorization for the group or a topic). `run` ends with it.
    #[error(
        "the consumer cannot go on: {0}; check its credentials, and its ACLs for the group and topics"
    )]
    ConsumerFailed(rdkafka::error::KafkaError),
    /// A stopping consumer did not leave its group in time. Its partitions
    /// go to other members once this process exits and its session times out;
    /// events it handled but had not committed are delivered again.
    #[error(
        "the consumer did not leave group {group} within {timeout:?}; librdkafka's close was still waiting ({state})"
    )]
    CloseTimedOut {
        /// The consumer group.
        group: String,
        /// [`ConsumerSettings::close_timeout`](crate::ConsumerSettings::close_timeout).
        timeout: std::time::Duration,
        /// The member's last reported group state.
        state: String,
    },
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.0
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error(Box::new(kind))
    }
}

/// Why a handler did not handle an event. The consumer leaves the event's
/// offset uncommitted, so the event is delivered again (at least once).
#[derive(Debug)]
pub struct HandlerError {
    message: String,
    kind: HandlerErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandlerErrorKind {
    Retryable,
    Permanent,
    /// Raised by dispatchers, not handlers: the record is poison.
    Undecodable,
}

impl HandlerError {
    /// A failure that may pass on a later attempt (a timeout, a busy database).
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            kind: HandlerErrorKind::Retryable,
            source: None,
        }
    }

    /// A failure that no retry will fix (the event itself is unacceptable).
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            kind: HandlerErrorKind::Permanent,
            source: None,
        }
    }

    /// A handler that panicked: retryable, since the panic may come from the
    /// state the handler met (a poisoned lock, a dependency) rather than the
    /// event; the retry policy dead-letters it if it keeps panicking.
    pub(crate) fn panicked(panic: &(dyn std::any::Any + Send)) -> Self {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a non-string payload");
        HandlerError::retryable(format!("the handler panicked: {what}"))
    }

    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == HandlerErrorKind::Retryable
    }

    /// Whether the payload did not decode (no handler was called).
    pub fn is_undecodable(&self) -> bool {
        self.kind == HandlerErrorKind::Undecodable
    }

    /// The payload did not decode as the type the writer's schema names.
    pub fn undecodable(full_name: &str, err: prost::DecodeError) -> Self {
        HandlerError {
            message: format!("payload does not decode as {full_name}"),
            kind: HandlerErrorKind::Undecodable,
            source: Some(Box::new(err)),
        }
    }
}

/// The message only: the cause is [`source()`](std::error::Error::source),
/// so that a report of the chain says it once.
impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// An error with every cause after it (`message: cause: cause`), as logs and
/// dead-letter records carry it.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

impl std::error::Error for HandlerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_cause_is_said_once() {
        let timeout = std::io::Error::new(std::io::ErrorKind::TimedOut, "database timed out");
        let err = HandlerError::retryable("saving the order").with_source(timeout);
        assert_eq!(err.to_string(), "saving the order");
        assert_eq!(err.source().unwrap().to_string(), "database timed out");
        assert_eq!(
            Chain(&err).to_string(),
            "saving the order: database timed out"
        );

        let kafka = rdkafka::error::KafkaError::Canceled;
        let err: Error = ErrorKind::Kafka(kafka).into();
        assert!(err.to_string().starts_with("kafka: "), "{err}");
        assert!(
            err.source().is_none(),
            "the cause is in the message already"
        );
    }
}
