//! W3C Trace Context (`traceparent`) as Protobus carries it: from gRPC
//! metadata into the record's `traceparent` header, and from there onto the
//! handler's span (`trace_id`, `parent_span_id`), so a handler's log lines
//! join the trace that caused them. An invalid value is ignored, as the
//! specification asks.

/// The header (and gRPC metadata key) that carries the trace context.
pub const HEADER: &str = "traceparent";

/// A parsed `traceparent`: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent<'a> {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: &'a str,
    /// 16 lowercase hex digits, not all zero: the span that sent the event.
    pub parent_id: &'a str,
    /// Whether the caller sampled (recorded) its span.
    pub sampled: bool,
}

impl<'a> TraceParent<'a> {
    /// Parses version `00` (and, as the specification asks, the first four
    /// fields of a later version); `None` for anything else.
    pub fn parse(value: &'a str) -> Option<Self> {
        let value = value.trim();
        let mut fields = value.split('-');
        let (version, trace_id, parent_id, flags) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        let hex = |s: &str, len| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || fields.next().is_none())
            && hex(trace_id, 32)
            && !zero(trace_id)
            && hex(parent_id, 16)
            && !zero(parent_id)
            && hex(flags, 2);
        if !valid {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id,
            parent_id,
            sampled: flags & 1 == 1,
        })
    }
}

/// Makes `span` a child of the remote span `parent` in OpenTelemetry, so
/// that an exported handler span joins the trace that caused the event.
#[cfg(feature = "opentelemetry")]
pub(crate) fn set_parent(span: &tracing::Span, parent: &TraceParent<'_>) {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};
    use opentelemetry::{SpanId, TraceFlags, TraceId};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let (Ok(trace_id), Ok(span_id)) = (
        TraceId::from_hex(parent.trace_id),
        SpanId::from_hex(parent.parent_id),
    ) else {
        return;
    };
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    // Fails only when no OpenTelemetry layer is installed: nothing to join then.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

/// The `traceparent` of the current span when OpenTelemetry records it, so
/// that an event sent from a handler names the handler's span as its parent.
#[cfg(feature = "opentelemetry")]
pub(crate) fn current() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let context = tracing::Span::current().context();
    let span = context.span();
    let span = span.span_context();
    span.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_specification_example() {
        let parsed =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.parent_id, "00f067aa0ba902b7");
        assert!(parsed.sampled);
    }

    #[test]
    fn refuses_what_the_specification_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version may append fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x")
                .is_some()
        );
    }
}
