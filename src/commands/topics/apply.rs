//! `protobus topics apply`: creates the contract's event and dead-letter
//! topics and brings their settings to what the contract declares. It adds
//! partitions only when asked, never removes anything, and a second run
//! changes nothing.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use clap::Args;
use protobus_contract::{
    DEFAULT_DEAD_LETTER_PARTITIONS, DEFAULT_PARTITIONS, ResolvedSettings, dead_letter_topic,
};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use serde_json::json;

use crate::commands::flags::{KafkaArgs, ReportFormat};
use crate::contract::CONTRACT;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Prefix of the contract topics.
    #[arg(long, env = "PROTOBUS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Say what would change, change nothing.
    #[arg(long, env = "PROTOBUS_TOPICS_DRY_RUN")]
    pub dry_run: bool,

    /// Add the partitions the contract declares beyond what a topic has.
    /// Keys then map to other partitions: the events of one key written
    /// before and after the change are no longer in one partition's order.
    #[arg(long, env = "PROTOBUS_TOPICS_ADD_PARTITIONS")]
    pub add_partitions: bool,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// `human`: a line per topic; `json`: one object per topic and line.
    #[arg(long, value_enum, default_value_t = ReportFormat::Human, env = "PROTOBUS_TOPICS_FORMAT")]
    pub format: ReportFormat,
}

/// A topic config Protobus manages, from one setting of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    name: &'static str,
    /// The topic's value now; `None` for a topic not created yet.
    from: Option<String>,
    to: String,
}

/// What `apply` does to one topic.
#[derive(Debug)]
struct Plan {
    topic: String,
    wanted: ResolvedSettings,
    /// The topic's partitions now; `None`: not created yet.
    partitions: Option<usize>,
    configs: Vec<Change>,
    /// Partitions to reach, when they are added.
    add_partitions: Option<u32>,
    /// Dynamic configs the topic has besides those changed: Kafka's
    /// AlterConfigs replaces the whole set, so they are sent again.
    kept: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Plan {
    fn creates(&self) -> bool {
        self.partitions.is_none()
    }

    fn alters(&self) -> bool {
        !self.creates() && !self.configs.is_empty()
    }

    fn changes(&self) -> bool {
        self.creates() || self.alters() || self.add_partitions.is_some()
    }
}

pub(super) async fn run(args: ApplyArgs) -> Result<()> {
    let kafka = args.kafka.clone();
    let metadata =
        tokio::task::spawn_blocking(move || crate::commands::kafka_client::metadata(&kafka, None))
            .await??;
    let brokers = u32::try_from(metadata.brokers().len()).unwrap_or(u32::MAX);
    // Topic -> (partitions, copies of its first partition).
    let existing: HashMap<String, (usize, usize)> = metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| {
            let copies = t.partitions().first().map_or(0, |p| p.replicas().len());
            (t.name().to_owned(), (t.partitions().len(), copies))
        })
        .collect();

    let mut wanted = Vec::new();
    for topic in CONTRACT.topics {
        let name = format!("{}{}", args.topic_prefix, topic.name);
        let dead_letter = dead_letter_topic(&name);
        wanted.push((name, topic.settings.resolve(DEFAULT_PARTITIONS, brokers)));
        wanted.push((
            dead_letter,
            topic
                .dead_letter
                .resolve(DEFAULT_DEAD_LETTER_PARTITIONS, brokers),
        ));
    }
    for (topic, settings) in &wanted {
        if settings.replication_factor > brokers {
            bail!(
                "{topic} needs {} copies of each partition, and the cluster has {brokers} broker(s); \
                 lower replication_factor in the contract or add brokers",
                settings.replication_factor
            );
        }
        if settings.min_insync_replicas > settings.replication_factor {
            bail!(
                "{topic} would need {} in-sync copies of {}: no write could be acknowledged; \
                 lower min_insync_replicas in the contract",
                settings.min_insync_replicas,
                settings.replication_factor
            );
        }
    }

    let admin: AdminClient<DefaultClientContext> = args
        .kafka
        .client_config()?
        .create()
        .context("creating a Kafka admin client")?;
    let timeout: std::time::Duration = args.kafka.timeout.into();
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let current = describe(&admin, &options, &wanted, &existing).await?;

    let plans: Vec<Plan> = wanted
        .into_iter()
        .map(|(topic, settings)| {
            let found = existing.get(&topic).copied();
            let configs = current.get(&topic);
            plan(topic, settings, found, configs, args.add_partitions)
        })
        .collect();

    if !args.dry_run {
        execute(&admin, &options, &plans).await?;
    }
    report(&plans, &args);
    Ok(())
}

/// The current dynamic configs and values of the wanted topics that exist.
async fn describe(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    wanted: &[(String, ResolvedSettings)],
    existing: &HashMap<String, (usize, usize)>,
) -> Result<HashMap<String, Current>> {
    let names: Vec<&str> = wanted
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| existing.contains_key(*t))
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let specifiers: Vec<ResourceSpecifier> =
        names.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let described = admin
        .describe_configs(&specifiers, options)
        .await
        .context("reading the topics' configs")?;
    let mut current = HashMap::new();
    for result in described {
        let resource = result.map_err(|code| anyhow::anyhow!("reading topic configs: {code}"))?;
        // Results are matched by the topic they name, not by position.
        let OwnedResourceSpecifier::Topic(name) = &resource.specifier else {
            continue;
        };
        let mut found = Current::default();
        for entry in &resource.entries {
            if let Some(value) = &entry.value {
                found.values.insert(entry.name.clone(), value.clone());
            }
            if entry.source == ConfigSource::DynamicTopic {
                match &entry.value {
                    Some(value) => found.dynamic.push((entry.name.clone(), value.clone())),
                    None => found.hidden.push(entry.name.clone()),
                }
            }
        }
        current.insert(name.clone(), found);
    }
    Ok(current)
}

/// A topic's configs as Kafka describes them.
#[derive(Debug, Default)]
struct Current {
    /// Every config with a value, whatever its source.
    values: HashMap<String, String>,
    /// The configs set on the topic itself.
    dynamic: Vec<(String, String)>,
    /// Configs set on the topic whose values Kafka does not show (sensitive).
    hidden: Vec<String>,
}

fn plan(
    topic: String,
    wanted: ResolvedSettings,
    found: Option<(usize, usize)>,
    current: Option<&Current>,
    add_partitions: bool,
) -> Plan {
    let mut targets = vec![(
        "min.insync.replicas",
        wanted.min_insync_replicas.to_string(),
    )];
    if let Some(ms) = wanted.retention_ms {
        targets.push(("retention.ms", ms.to_string()));
    }
    let mut plan = Plan {
        topic,
        wanted,
        partitions: found.map(|(partitions, _)| partitions),
        configs: Vec::new(),
        add_partitions: None,
        kept: Vec::new(),
        notes: Vec::new(),
    };
    let Some((partitions, copies)) = found else {
        plan.configs = targets
            .into_iter()
            .map(|(name, to)| Change {
                name,
                from: None,
                to,
            })
            .collect();
        return plan;
    };
    let empty = Current::default();
    let current = current.unwrap_or(&empty);
    for (name, to) in targets {
        let from = current.values.get(name).cloned();
        if from.as_deref() != Some(to.as_str()) {
            plan.configs.push(Change { name, from, to });
        }
    }
    plan.kept = current
        .dynamic
        .iter()
        .filter(|(name, _)| !plan.configs.iter().any(|c| c.name == name))
        .cloned()
        .collect();
    if !plan.configs.is_empty() && !current.hidden.is_empty() {
        plan.notes.push(format!(
            "not altered: its configs {} are hidden (sensitive) and would be reset",
            current.hidden.join(", ")
        ));
        plan.configs.clear();
    }
    let declared = wanted.partitions as usize;
    if declared > partitions {
        if add_partitions {
            plan.add_partitions = Some(wanted.partitions);
        } else {
            plan.notes.push(format!(
                "has {partitions} partition(s), the contract declares {declared}: --add-partitions adds them; \
                 keys then map to other partitions, so the events of a key written before and after are \
                 not in one partition's order"
            ));
        }
    } else if declared < partitions {
        plan.notes.push(format!(
            "has {partitions} partition(s), the contract declares {declared}: Kafka cannot remove partitions; left as it is"
        ));
    }
    if copies != wanted.replication_factor as usize {
        plan.notes.push(format!(
            "has {copies} copies of each partition, the contract declares {}: changing that is a \
             partition reassignment (kafka-reassign-partitions.sh); left as it is",
            wanted.replication_factor
        ));
    }
    plan
}

async fn execute(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    plans: &[Plan],
) -> Result<()> {
    let creates: Vec<NewTopic> = plans
        .iter()
        .filter(|p| p.creates())
        .map(|p| {
            let mut new = NewTopic::new(
                &p.topic,
                p.wanted.partitions as i32,
                TopicReplication::Fixed(p.wanted.replication_factor as i32),
            );
            for change in &p.configs {
                new = new.set(change.name, &change.to);
            }
            new
        })
        .collect();
    if !creates.is_empty() {
        for result in admin
            .create_topics(&creates, options)
            .await
            .context("creating topics")?
        {
            if let Err((topic, code)) = result {
                bail!("creating {topic}: {code}");
            }
        }
    }
    let alters: Vec<AlterConfig> = plans
        .iter()
        .filter(|p| p.alters())
        .map(|p| {
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&p.topic));
            for (name, value) in &p.kept {
                alter = alter.set(name, value);
            }
            for change in &p.configs {
                alter = alter.set(change.name, &change.to);
            }
            alter
        })
        .collect();
    if !alters.is_empty() {
        for result in admin
            .alter_configs(&alters, options)
            .await
            .context("altering topic configs")?
        {
            if let Err((resource, code)) = result {
                bail!("altering the configs of {resource:?}: {code}");
            }
        }
    }
    let grows: Vec<NewPartitions> = plans
        .iter()
        .filter_map(|p| {
            p.add_partitions
                .map(|n| NewPartitions::new(&p.topic, n as usize))
        })
        .collect();
    if !grows.is_empty() {
        for result in admin
            .create_partitions(&grows, options)
            .await
            .context("adding partitions")?
        {
            if let Err((topic, code)) = result {
                bail!("adding partitions to {topic}: {code}");
            }
        }
    }
    Ok(())
}

fn report(plans: &[Plan], args: &ApplyArgs) {
    let changed = plans.iter().filter(|p| p.changes()).count();
    match args.format {
        ReportFormat::Json => {
            for p in plans {
                let action = if p.creates() {
                    "create"
                } else if p.changes() {
                    "update"
                } else {
                    "unchanged"
                };
                let configs: Vec<_> = p
                    .configs
                    .iter()
                    .map(|c| json!({ "name": c.name, "from": c.from, "to": c.to }))
                    .collect();
                println!(
                    "{}",
                    json!({
                        "topic": p.topic,
                        "action": action,
                        "applied": !args.dry_run && p.changes(),
                        "partitions": { "from": p.partitions, "to": p.add_partitions.or(p.creates().then_some(p.wanted.partitions)) },
                        "replication_factor": p.wanted.replication_factor,
                        "configs": configs,
                        "notes": p.notes,
                    })
                );
            }
        }
        ReportFormat::Human => {
            let width = plans.iter().map(|p| p.topic.len()).max().unwrap_or(0);
            for p in plans {
                let mut line = String::new();
                if p.creates() {
                    let _ = write!(
                        line,
                        "create  {:width$}  partitions {}, replication factor {}",
                        p.topic, p.wanted.partitions, p.wanted.replication_factor
                    );
                    for c in &p.configs {
                        let _ = write!(line, ", {} {}", c.name, c.to);
                    }
                } else if p.changes() {
                    let _ = write!(line, "update  {:width$} ", p.topic);
                    let mut parts: Vec<String> = p
                        .configs
                        .iter()
                        .map(|c| {
                            format!(
                                "{} {} -> {}",
                                c.name,
                                c.from.as_deref().unwrap_or("(unset)"),
                                c.to
                            )
                        })
                        .collect();
                    if let (Some(from), Some(to)) = (p.partitions, p.add_partitions) {
                        parts.push(format!("partitions {from} -> {to}"));
                    }
                    let _ = write!(line, " {}", parts.join(", "));
                } else {
                    let _ = write!(line, "ok      {}", p.topic);
                }
                println!("{}", line.trim_end());
                for note in &p.notes {
                    println!("        {}: {note}", p.topic);
                }
            }
            match (changed, args.dry_run) {
                (0, _) => println!("no changes: every topic is as the contract declares"),
                (n, true) => println!("dry run: {n} topic(s) would change; nothing was changed"),
                (n, false) => println!("applied: {n} topic(s) changed"),
            }
        }
    }
}
