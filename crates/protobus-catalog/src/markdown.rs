//! The catalog as Markdown: an index, and a page per topic with its
//! settings and, per event type, its description, key, subject, fields and
//! schema.

use std::fmt::Write as _;

use crate::{Catalog, HEADERS, TopicEntry};

impl Catalog {
    /// The index page: every topic with its event types, linking to
    /// [`markdown_file`](Self::markdown_file) of each.
    pub fn markdown_index(&self) -> String {
        let mut page = format!("# {}\n\nVersion {}.\n\n", self.title, self.version);
        page.push_str("| Topic | Event types |\n| --- | --- |\n");
        for topic in &self.topics {
            let events: Vec<String> = topic
                .events
                .iter()
                .map(|e| format!("`{}`", e.full_name))
                .collect();
            let _ = writeln!(
                page,
                "| [{}]({}) | {} |",
                topic.name,
                Self::markdown_file(&topic.name),
                events.join(", ")
            );
        }
        page
    }

    /// The file name of a topic's page.
    pub fn markdown_file(topic: &str) -> String {
        format!("{topic}.md")
    }

    /// The page of `topic`.
    pub fn markdown(topic: &TopicEntry) -> String {
        let mut page = format!("# {}\n\n", topic.name);
        let or = |value: Option<String>, default: &str| value.unwrap_or(default.into());
        let settings = [
            ("partitions", topic.partitions.to_string()),
            (
                "replication factor",
                or(
                    topic.replication_factor.map(|r| r.to_string()),
                    "3, or every broker when fewer",
                ),
            ),
            (
                "min.insync.replicas",
                or(
                    topic.min_insync_replicas.map(|r| r.to_string()),
                    "one less than the replication factor when that leaves 2 or more, else 1",
                ),
            ),
            (
                "retention.ms",
                or(topic.retention_ms.map(|r| r.to_string()), "the broker's"),
            ),
            (
                "dead letters",
                format!(
                    "`{}` ({} partition(s))",
                    topic.dead_letter_topic, topic.dead_letter_partitions
                ),
            ),
        ];
        page.push_str("| Setting | Value |\n| --- | --- |\n");
        for (name, value) in settings {
            let _ = writeln!(page, "| {name} | {value} |");
        }
        page.push_str("\nEvery record carries these headers:\n\n");
        for (name, what) in HEADERS {
            let _ = writeln!(page, "- `{name}`: {what}");
        }
        for event in &topic.events {
            let _ = write!(page, "\n## {}\n\n", event.name);
            if let Some(description) = &event.description {
                let _ = write!(page, "{description}\n\n");
            }
            let _ = writeln!(page, "- type: `{}` in `{}`", event.full_name, event.file);
            let _ = writeln!(page, "- key: `{}` ({})", event.key, event.key_type);
            let _ = writeln!(
                page,
                "- subject: `{}` ({}), compatibility {}",
                event.subject,
                event.subject_name_strategy.option_name(),
                event.compatibility
            );
            page.push_str("\n| Field | Number | Type | Description |\n| --- | --- | --- | --- |\n");
            for field in &event.fields {
                let description = field
                    .description
                    .as_deref()
                    .unwrap_or_default()
                    .replace('\n', " ")
                    .replace('|', "\\|");
                let _ = writeln!(
                    page,
                    "| `{}` | {} | `{}` | {description} |",
                    field.name, field.number, field.r#type
                );
            }
            if !event.schema.is_empty() {
                let _ = write!(page, "\n```proto\n{}\n```\n", event.schema.trim_end());
            }
        }
        page
    }
}
