//! Flag groups several commands share: where Kafka is, how to reach the
//! schema registry, and how reports are printed.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use protobus_runtime::{RegistryTls, SchemaRegistry};

use crate::cli::{DEFAULT_KAFKA, DEFAULT_REGISTRY_URL, DEFAULT_TIMEOUT};

/// Where Kafka is and how to reach it; librdkafka settings pass through as
/// they are (`security.protocol`, `sasl.*`, `ssl.*`…), as Kafka's own tools do.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long = "kafka", env = "KAFKA_BOOTSTRAP_SERVERS", default_value = DEFAULT_KAFKA)]
    pub bootstrap: String,

    /// A librdkafka setting `name=value` for every Kafka client (repeatable;
    /// the variable takes a comma-separated list). Secrets belong in --kafka-config-file.
    #[arg(long = "kafka-config", env = "PROTOBUS_KAFKA_CONFIG", value_delimiter = ',', value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,

    /// A file of librdkafka settings, `name=value` per line (`#` comments),
    /// such as `sasl.password`.
    #[arg(long = "kafka-config-file", env = "PROTOBUS_KAFKA_CONFIG_FILE")]
    pub settings_file: Option<std::path::PathBuf>,

    /// How long to wait for Kafka to answer before a command gives up (e.g. `10s`).
    #[arg(id = "kafka_timeout", long = "kafka-timeout", env = "PROTOBUS_KAFKA_TIMEOUT", default_value_t = DEFAULT_TIMEOUT.into())]
    pub timeout: humantime::Duration,
}

impl KafkaArgs {
    /// Kafka at `bootstrap`, with no other settings.
    pub fn at(bootstrap: &str) -> Self {
        KafkaArgs {
            bootstrap: bootstrap.to_owned(),
            settings: Vec::new(),
            settings_file: None,
            timeout: DEFAULT_TIMEOUT.into(),
        }
    }

    /// The client settings: bootstrap servers, then the file, then each --kafka-config.
    pub fn client_config(&self) -> anyhow::Result<rdkafka::ClientConfig> {
        let mut config = rdkafka::ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        if let Some(path) = &self.settings_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("reading Kafka settings from {}: {e}", path.display())
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, value) = parse_setting(line)
                    .map_err(|e| anyhow::anyhow!("{}, line {}: {e}", path.display(), number + 1))?;
                config.set(name, value);
            }
        }
        for (name, value) in &self.settings {
            config.set(name, value);
        }
        Ok(config)
    }
}

impl std::fmt::Display for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.bootstrap)
    }
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        // The value is left out: it may be a secret.
        _ => Err("expected `name=value`".to_owned()),
    }
}

/// How to reach a Confluent-compatible schema registry (Confluent's clients
/// call these `schema.registry.url` and `schema.registry.ssl.*`).
#[derive(Debug, Clone, Args)]
pub struct RegistryClientArgs {
    /// URL of a Confluent-compatible schema registry (`https://user:password@host` for TLS and basic auth).
    #[arg(long = "registry", env = "SCHEMA_REGISTRY_URL", hide_env_values = true, default_value = DEFAULT_REGISTRY_URL)]
    pub url: String,

    /// CA certificates (PEM) to trust for an https:// registry, besides the system's.
    #[arg(long = "registry-ca-file", env = "PROTOBUS_REGISTRY_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// Client certificate chain (PEM) for a registry that requires one; needs --registry-key-file.
    #[arg(
        long = "registry-cert-file",
        env = "PROTOBUS_REGISTRY_CERT_FILE",
        requires = "key_file"
    )]
    pub cert_file: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(
        long = "registry-key-file",
        env = "PROTOBUS_REGISTRY_KEY_FILE",
        requires = "cert_file"
    )]
    pub key_file: Option<PathBuf>,

    /// How long a registry request may take, connecting included (e.g. `10s`).
    #[arg(id = "registry_timeout", long = "registry-timeout", env = "PROTOBUS_REGISTRY_TIMEOUT", default_value_t = DEFAULT_TIMEOUT.into())]
    pub timeout: humantime::Duration,
}

impl RegistryClientArgs {
    /// The TLS settings these flags give.
    pub fn tls(&self) -> RegistryTls {
        RegistryTls {
            ca_file: self.ca_file.clone(),
            identity: self.cert_file.clone().zip(self.key_file.clone()),
        }
    }

    /// A runtime client of the registry.
    pub fn client(&self) -> anyhow::Result<SchemaRegistry> {
        Ok(SchemaRegistry::configured(
            &self.url,
            &self.tls(),
            self.timeout.into(),
        )?)
    }

    /// [`client`](Self::client), once the registry answered: a command
    /// that needs the registry fails at once, in one line, when it cannot.
    pub async fn reachable_client(&self) -> anyhow::Result<SchemaRegistry> {
        let client = self.client()?;
        client.reachable().await?;
        Ok(client)
    }
}

/// How a producing command finds its event types' schema ids.
#[derive(Debug, Clone, Copy, Args)]
pub struct RegistrationArgs {
    /// `auto`: register the schemas the registry lacks; `lookup`: only find
    /// this build's exact schemas, failing when one is not registered;
    /// `latest`: use each subject's latest version, once the registry says
    /// this build is compatible with it. `lookup` and `latest` never write.
    #[arg(long, env = "PROTOBUS_REGISTRATION", value_enum, default_value_t = RegistrationMode::Auto)]
    pub registration: RegistrationMode,
}

/// [`protobus_runtime::Registration`], as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistrationMode {
    Auto,
    Lookup,
    Latest,
}

impl RegistrationArgs {
    /// The runtime's registration mode.
    pub fn mode(self) -> protobus_runtime::Registration {
        match self.registration {
            RegistrationMode::Auto => protobus_runtime::Registration::AutoRegister,
            RegistrationMode::Lookup => protobus_runtime::Registration::LookupOnly,
            RegistrationMode::Latest => protobus_runtime::Registration::UseLatest,
        }
    }
}

/// Whether a producing command may run with settings that weaken delivery.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct DeliveryArgs {
    /// Accept producer settings that weaken delivery (`acks` other than
    /// `all`, `enable.idempotence=false`): acknowledged events may then be
    /// lost when a partition leader fails, or written twice.
    #[arg(long, env = "PROTOBUS_ALLOW_WEAKER_DELIVERY")]
    pub allow_weaker_delivery: bool,
}

impl DeliveryArgs {
    /// A typed producer with `config`, refusing weaker delivery unless allowed.
    pub fn producer(
        &self,
        config: &rdkafka::ClientConfig,
        registry: std::sync::Arc<SchemaRegistry>,
    ) -> anyhow::Result<protobus_runtime::EventProducer> {
        Ok(if self.allow_weaker_delivery {
            protobus_runtime::EventProducer::with_weaker_delivery(config, registry)?
        } else {
            protobus_runtime::EventProducer::new(config, registry)?
        })
    }
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Human,
    Json,
}
