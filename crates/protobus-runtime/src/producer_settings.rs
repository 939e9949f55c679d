//! The producer's librdkafka settings: Protobus's defaults, and the
//! settings that would weaken delivery, refused unless asked for.

use rdkafka::ClientConfig;

use crate::error::{Error, ErrorKind};

/// Producer settings Protobus insists on unless the caller set them:
/// no loss and no duplicates from retries.
const DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "5"),
];

/// `config` with Protobus's defaults for what it leaves unset.
pub(crate) fn with_defaults(config: &ClientConfig) -> ClientConfig {
    let mut config = config.clone();
    for (key, value) in DEFAULTS {
        if config.get(key).is_none() {
            config.set(*key, *value);
        }
    }
    config
}

/// Refuses settings under which an acknowledged event can be lost or a
/// retried one written twice.
pub(crate) fn check_delivery(config: &ClientConfig) -> Result<(), Error> {
    let refuse = |setting: String, loses: &str| -> Error {
        ErrorKind::Config(format!(
            "{setting} {loses}; Protobus producers keep acks=all and enable.idempotence=true. \
             To accept that anyway, build the producer with EventProducer::with_weaker_delivery \
             (the protobus commands: --allow-weaker-delivery)"
        ))
        .into()
    };
    let acks = config.get("acks").unwrap_or("all");
    if !matches!(acks, "all" | "-1") {
        return Err(refuse(
            format!("acks={acks}"),
            "lets the partition leader acknowledge an event before any other broker has it: \
             when that leader fails, acknowledged events are lost",
        ));
    }
    let idempotence = config.get("enable.idempotence").unwrap_or("true");
    if idempotence != "true" {
        return Err(refuse(
            format!("enable.idempotence={idempotence}"),
            "lets a send that is retried after a lost answer be written twice, and out of order",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{EventProducer, SchemaRegistry};

    #[test]
    fn settings_that_lose_events_are_refused_unless_asked_for() {
        let registry = Arc::new(SchemaRegistry::new("http://127.0.0.1:1").unwrap());
        let config = |settings: &[(&str, &str)]| {
            let mut config = ClientConfig::new();
            config.set("bootstrap.servers", "127.0.0.1:1");
            for (key, value) in settings {
                config.set(*key, *value);
            }
            config
        };
        for (settings, refused, says) in [
            (
                &[("acks", "1")][..],
                "acks=1",
                "acknowledged events are lost",
            ),
            (
                &[("acks", "0")][..],
                "acks=0",
                "acknowledged events are lost",
            ),
            (
                &[("enable.idempotence", "false")][..],
                "enable.idempotence=false",
                "written twice",
            ),
        ] {
            let err = EventProducer::new(&config(settings), registry.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains(refused) && err.contains(says), "{err}");
            assert!(err.contains("with_weaker_delivery"), "{err}");
        }
        let weaker = config(&[("acks", "1"), ("enable.idempotence", "false")]);
        assert!(EventProducer::with_weaker_delivery(&weaker, registry.clone()).is_ok());
        assert!(EventProducer::new(&config(&[("acks", "-1")]), registry.clone()).is_ok());
        assert!(EventProducer::new(&config(&[]), registry).is_ok());
    }
}
