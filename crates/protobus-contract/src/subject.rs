//! Registry subject names (Confluent's subject name strategies).

/// Two event types whose schemas would be versions of one subject: the
/// registry would judge each against the other and hand readers the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "events {first} and {second} would share the registry subject {subject:?}; \
     give them subjects of their own (TOPIC_RECORD_NAME, the default, names one per type)"
)]
pub struct SubjectClash {
    /// The subject both would get.
    pub subject: String,
    /// The event type met first.
    pub first: String,
    /// The event type met second.
    pub second: String,
    /// The position of the second among the events checked.
    pub index: usize,
}

/// Checks that the events, given as (subject, full name), each get a
/// subject of their own.
pub fn check_subjects<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), SubjectClash> {
    let mut seen: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (index, (subject, full_name)) in events.into_iter().enumerate() {
        if let Some(first) = seen.insert(subject, full_name) {
            return Err(SubjectClash {
                subject: subject.to_owned(),
                first: first.to_owned(),
                second: full_name.to_owned(),
                index,
            });
        }
    }
    Ok(())
}

/// How the registry subject of an event type is named
/// (`(protobus.event).subject_name_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-value`: one schema (and type) per topic.
    TopicName,
    /// `<full message name>`: the type's subject, whatever the topic.
    RecordName,
    /// `<topic>-<full message name>`: several event types per topic. The default.
    #[default]
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for an event of type `full_name` on `topic`.
    pub fn subject(self, topic: &str, full_name: &str) -> String {
        match self {
            SubjectNameStrategy::TopicName => format!("{topic}-value"),
            SubjectNameStrategy::RecordName => full_name.to_owned(),
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{full_name}"),
        }
    }

    /// The strategy an option value names (`SubjectNameStrategy` in
    /// `protobus/options.proto`); unspecified or unknown values are the default.
    pub fn from_option(value: i32) -> Self {
        match value {
            1 => SubjectNameStrategy::TopicName,
            2 => SubjectNameStrategy::RecordName,
            _ => SubjectNameStrategy::TopicRecordName,
        }
    }

    /// The name `protobus/options.proto` gives it, e.g. `TOPIC_RECORD_NAME`.
    pub fn option_name(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TOPIC_NAME",
            SubjectNameStrategy::RecordName => "RECORD_NAME",
            SubjectNameStrategy::TopicRecordName => "TOPIC_RECORD_NAME",
        }
    }

    /// The strategy as Confluent's clients name its class
    /// (`TopicRecordNameStrategy`…).
    pub fn class_name(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TopicNameStrategy",
            SubjectNameStrategy::RecordName => "RecordNameStrategy",
            SubjectNameStrategy::TopicRecordName => "TopicRecordNameStrategy",
        }
    }

    /// The variant's name, as generated code spells it.
    pub fn variant(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TopicName",
            SubjectNameStrategy::RecordName => "RecordName",
            SubjectNameStrategy::TopicRecordName => "TopicRecordName",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_as_confluent_names_them() {
        let (topic, name) = ("shop.orders", "shop.orders.v1.OrderPlaced");
        assert_eq!(
            SubjectNameStrategy::TopicName.subject(topic, name),
            "shop.orders-value"
        );
        assert_eq!(SubjectNameStrategy::RecordName.subject(topic, name), name);
        assert_eq!(
            SubjectNameStrategy::default().subject(topic, name),
            "shop.orders-shop.orders.v1.OrderPlaced"
        );
        assert_eq!(
            SubjectNameStrategy::from_option(0),
            SubjectNameStrategy::TopicRecordName
        );
        assert_eq!(
            SubjectNameStrategy::from_option(2),
            SubjectNameStrategy::RecordName
        );
    }
}
