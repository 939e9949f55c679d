//! How the contract's topics are provisioned: what a file declares with
//! `option (protobus.topic)`, and the defaults for what it leaves out.

use prost_reflect::{DescriptorPool, DynamicMessage, FileDescriptor, Value};

use crate::Location;

/// The full name of the file option that declares a topic's settings.
pub const TOPIC_OPTION: &str = "protobus.topic";
/// Its field number in `protobus/options.proto` (on `FileOptions`).
const TOPIC_FIELD_NUMBER: i32 = 51235;
/// What a topic's dead-letter topic is called: the topic, then this.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";
/// Partitions of an event topic that declares none.
pub const DEFAULT_PARTITIONS: u32 = 6;
/// Partitions of a dead-letter topic that declares none.
pub const DEFAULT_DEAD_LETTER_PARTITIONS: u32 = 1;

/// The dead-letter topic of `topic`.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}{DEAD_LETTER_SUFFIX}")
}

/// One topic's declared settings; `None` leaves a setting to its default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TopicSettings {
    /// Partitions.
    pub partitions: Option<u32>,
    /// Copies of each partition.
    pub replication_factor: Option<u32>,
    /// Copies that must hold an event before it is acknowledged.
    pub min_insync_replicas: Option<u32>,
    /// How long events are kept, in milliseconds (-1: forever).
    pub retention_ms: Option<i64>,
}

/// Settings with every default filled in for a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolvedSettings {
    /// Partitions.
    pub partitions: u32,
    /// Copies of each partition.
    pub replication_factor: u32,
    /// Copies that must hold an event before it is acknowledged.
    pub min_insync_replicas: u32,
    /// How long events are kept; `None`: the broker's default.
    pub retention_ms: Option<i64>,
}

impl TopicSettings {
    /// The settings on a cluster of `brokers`: replication factor 3 (every
    /// broker when fewer), `min.insync.replicas` one less than that when it
    /// leaves 2 or more (so one broker may fail without stopping writes,
    /// and no acknowledged event lives on one broker only), else 1.
    pub fn resolve(&self, default_partitions: u32, brokers: u32) -> ResolvedSettings {
        let replication_factor = self
            .replication_factor
            .unwrap_or_else(|| brokers.clamp(1, 3));
        let min_insync_replicas = self
            .min_insync_replicas
            .unwrap_or(if replication_factor >= 3 {
                replication_factor - 1
            } else {
                1
            });
        ResolvedSettings {
            partitions: self.partitions.unwrap_or(default_partitions),
            replication_factor,
            min_insync_replicas,
            retention_ms: self.retention_ms,
        }
    }
}

/// A topic as one file of the contract declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDeclaration {
    /// The topic.
    pub name: String,
    /// The event topic's settings.
    pub topic: TopicSettings,
    /// Its dead-letter topic's settings.
    pub dead_letter: TopicSettings,
    /// Where it is declared.
    pub location: Location,
}

/// A `(protobus.topic)` that cannot be right, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: topic {name:?}: {message}")]
pub struct TopicError {
    /// Where the declaration is.
    pub location: Location,
    /// The topic it names.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// Every `(protobus.topic)` of the files named `files`, checked one by one
/// (a name, a `min_insync_replicas` within the replication factor, a
/// dead-letter part without a name of its own); whether the topics are
/// the events' is for the caller, which knows the events.
pub fn declarations(
    pool: &DescriptorPool,
    files: &[&str],
) -> Result<Vec<TopicDeclaration>, TopicError> {
    let Some(extension) = pool.get_extension_by_name(TOPIC_OPTION) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for file in pool.files().filter(|f| files.contains(&f.name())) {
        let options = file.options();
        if !options.has_extension(&extension) {
            continue;
        }
        let declared = options.get_extension(&extension);
        let Value::List(items) = declared.as_ref() else {
            continue;
        };
        for (index, item) in items.iter().enumerate() {
            let Value::Message(option) = item else {
                continue;
            };
            found.push(declaration(&file, index, option)?);
        }
    }
    Ok(found)
}

fn declaration(
    file: &FileDescriptor,
    index: usize,
    option: &DynamicMessage,
) -> Result<TopicDeclaration, TopicError> {
    let location = option_location(file, index);
    let name = text(option, "name");
    let fail = |message: &str| TopicError {
        location: location.clone(),
        name: name.clone(),
        message: message.to_owned(),
    };
    if name.is_empty() {
        return Err(fail("`name` is required"));
    }
    let topic = settings(option);
    let dead_letter = match option.get_field_by_name("dead_letter").as_deref() {
        Some(Value::Message(inner)) if option.has_field_by_name("dead_letter") => {
            if !text(inner, "name").is_empty() || inner.has_field_by_name("dead_letter") {
                return Err(fail(&format!(
                    "`dead_letter` takes settings only: its topic is {}",
                    dead_letter_topic(&name)
                )));
            }
            settings(inner)
        }
        _ => TopicSettings::default(),
    };
    for (which, declared) in [("", topic), ("dead_letter.", dead_letter)] {
        if let (Some(copies), Some(replicas)) =
            (declared.min_insync_replicas, declared.replication_factor)
            && copies > replicas
        {
            return Err(fail(&format!(
                "{which}min_insync_replicas {copies} is more than {which}replication_factor \
                 {replicas}: no write could ever be acknowledged"
            )));
        }
    }
    Ok(TopicDeclaration {
        name,
        topic,
        dead_letter,
        location,
    })
}

fn text(message: &DynamicMessage, field: &str) -> String {
    match message.get_field_by_name(field).as_deref() {
        Some(Value::String(s)) => s.trim().to_owned(),
        _ => String::new(),
    }
}

/// The settings of one `TopicOptions`; 0 (proto3's unset) is `None`.
fn settings(message: &DynamicMessage) -> TopicSettings {
    let count = |field: &str| match message.get_field_by_name(field).as_deref() {
        Some(Value::U32(n)) if *n > 0 => Some(*n),
        _ => None,
    };
    TopicSettings {
        partitions: count("partitions"),
        replication_factor: count("replication_factor"),
        min_insync_replicas: count("min_insync_replicas"),
        retention_ms: match message.get_field_by_name("retention_ms").as_deref() {
            Some(Value::I64(n)) if *n != 0 => Some(*n),
            _ => None,
        },
    }
}

/// Where the `index`th `option (protobus.topic)` of `file` is (the file's
/// start when it was compiled without source information).
fn option_location(file: &FileDescriptor, index: usize) -> Location {
    // FileDescriptorProto.options is field 8.
    let wanted = [8, TOPIC_FIELD_NUMBER, index as i32];
    let spans: Vec<&[i32]> = file
        .file_descriptor_proto()
        .source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .filter(|l| l.path.starts_with(&wanted[..2]))
        .map(|l| l.span.as_slice())
        .collect();
    let exact = file
        .file_descriptor_proto()
        .source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .find(|l| l.path.as_slice() == wanted.as_slice())
        .map(|l| l.span.as_slice());
    exact
        .or_else(|| spans.get(index).copied())
        .and_then(|span| Location::of_span(file.name(), span))
        .unwrap_or_else(|| Location {
            file: file.name().to_owned(),
            line: 1,
            column: 1,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_cluster() {
        let none = TopicSettings::default();
        let three = none.resolve(DEFAULT_PARTITIONS, 5);
        assert_eq!(
            (
                three.partitions,
                three.replication_factor,
                three.min_insync_replicas
            ),
            (6, 3, 2)
        );
        let one = none.resolve(DEFAULT_DEAD_LETTER_PARTITIONS, 1);
        assert_eq!(
            (
                one.partitions,
                one.replication_factor,
                one.min_insync_replicas
            ),
            (1, 1, 1)
        );
        let two = none.resolve(6, 2);
        assert_eq!((two.replication_factor, two.min_insync_replicas), (2, 1));
        let declared = TopicSettings {
            replication_factor: Some(5),
            ..TopicSettings::default()
        };
        assert_eq!(declared.resolve(6, 3).min_insync_replicas, 4);
        assert_eq!(dead_letter_topic("shop.orders"), "shop.orders.dlq");
    }
}
