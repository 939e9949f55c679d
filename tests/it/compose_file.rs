//! Docker does not run on the machines that test this project, so this test
//! checks what `docker compose up` would rely on: that docker-compose.yml
//! describes the same stack as the scripts and asks the `protobus` binary and
//! the example consumer only for commands and environment variables they
//! accept, and that the Dockerfile builds both.

use std::collections::{BTreeMap, BTreeSet};

use clap::{CommandFactory, Parser};
use protobus::cli::Cli;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Compose {
    services: BTreeMap<String, Service>,
}

#[derive(Debug, Deserialize)]
struct Service {
    image: Option<String>,
    build: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    entrypoint: Vec<String>,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    healthcheck: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    profiles: Vec<String>,
}

fn read(path: &str) -> String {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + path;
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn compose() -> Compose {
    serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml parses")
}

/// Environment variables a subcommand reads, global flags included.
fn accepted_env(subcommand: &str) -> BTreeSet<String> {
    let cli = Cli::command();
    let sub = cli
        .find_subcommand(subcommand)
        .unwrap_or_else(|| panic!("protobus has no `{subcommand}` command"));
    cli.get_arguments()
        .chain(sub.get_arguments())
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

/// The long flag that `variable` is the fallback of.
fn flag_for(subcommand: &str, variable: &str) -> String {
    let cli = Cli::command();
    let sub = cli.find_subcommand(subcommand).unwrap();
    cli.get_arguments()
        .chain(sub.get_arguments())
        .find(|arg| arg.get_env().is_some_and(|env| env == variable))
        .and_then(|arg| arg.get_long())
        .unwrap_or_else(|| panic!("{variable} has no flag"))
        .to_owned()
}

/// The container port of each "HOST:CONTAINER" mapping, by host port.
fn published(service: &Service) -> BTreeMap<u16, u16> {
    service
        .ports
        .iter()
        .map(|mapping| {
            let (host, container) = mapping.rsplit_once(':').expect("HOST:CONTAINER");
            (host.parse().unwrap(), container.parse().unwrap())
        })
        .collect()
}

fn port_of(address: &str) -> u16 {
    let after_scheme = address.rsplit("//").next().unwrap();
    after_scheme.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn every_service_has_a_health_check() {
    for (name, service) in compose().services {
        assert!(
            service.healthcheck.is_some(),
            "service {name} has no healthcheck"
        );
    }
}

#[test]
fn protobus_services_use_only_commands_and_variables_the_binary_accepts() {
    let compose = compose();
    let ours: Vec<_> = compose
        .services
        .iter()
        .filter(|(_, s)| s.build.is_some() && s.entrypoint.is_empty())
        .collect();
    let names: BTreeSet<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["ingest", "registry"]),
        "services that run the protobus binary"
    );
    for (name, service) in ours {
        let subcommand = service.command.first().expect("command");
        let accepted = accepted_env(subcommand);
        for variable in service.environment.keys() {
            assert!(
                accepted.contains(variable),
                "service {name}: `protobus {subcommand}` reads no {variable} (it reads {accepted:?})"
            );
        }
        // The binary must accept each value: pass it through the flag that the
        // variable stands for (same parser, without touching this process's environment).
        let mut args = vec!["protobus".to_owned()];
        args.extend(service.command.iter().cloned());
        for (variable, value) in &service.environment {
            args.push(format!("--{}={value}", flag_for(subcommand, variable)));
        }
        if let Err(err) = Cli::try_parse_from(&args) {
            panic!("service {name}: {err}");
        }
    }
}

#[test]
fn ports_match_the_defaults_of_the_binary_and_scripts() {
    let compose = compose();
    let registry = &compose.services["registry"];
    let ingest = &compose.services["ingest"];
    let kafka = &compose.services["kafka"];

    let registry_port = port_of(&registry.environment["PROTOBUS_REGISTRY_LISTEN"]);
    let ingest_port = port_of(&ingest.environment["PROTOBUS_INGEST_LISTEN"]);
    // Each service also publishes its metrics endpoint on the same port.
    let metrics = |service: &Service| {
        let port = port_of(&service.environment["PROTOBUS_METRICS_LISTEN"]);
        (port, port)
    };
    assert_eq!(
        published(registry),
        BTreeMap::from([
            (
                port_of(protobus::cli::DEFAULT_REGISTRY_LISTEN),
                registry_port
            ),
            metrics(registry)
        ])
    );
    assert_eq!(
        published(ingest),
        BTreeMap::from([
            (port_of(protobus::cli::DEFAULT_INGEST_LISTEN), ingest_port),
            metrics(ingest)
        ])
    );
    assert_ne!(metrics(registry), metrics(ingest));
    assert_eq!(
        published(kafka),
        BTreeMap::from([(
            port_of(protobus::cli::DEFAULT_KAFKA),
            port_of(protobus::cli::DEFAULT_KAFKA)
        )])
    );
    assert_eq!(
        port_of(&ingest.environment["SCHEMA_REGISTRY_URL"]),
        registry_port
    );
    assert!(
        ingest.environment["SCHEMA_REGISTRY_URL"].contains("//registry:"),
        "ingest must reach the registry service"
    );

    // What the containers use must be an advertised listener of the broker.
    let advertised = &kafka.environment["KAFKA_ADVERTISED_LISTENERS"];
    for service in [registry, ingest] {
        let bootstrap = &service.environment["KAFKA_BOOTSTRAP_SERVERS"];
        assert!(
            advertised.contains(&format!("//{bootstrap}")),
            "{bootstrap} is not among {advertised}"
        );
    }
    // What the host uses is the address scripts/kafka.sh serves.
    assert!(advertised.contains(&format!("//{}", protobus::cli::DEFAULT_KAFKA)));
    assert!(
        !kafka.environment.contains_key("KAFKA_ZOOKEEPER_CONNECT"),
        "KRaft only"
    );
    assert!(kafka.environment["KAFKA_PROCESS_ROLES"].contains("controller"));
}

#[test]
fn kafka_image_matches_the_pinned_broker_of_the_scripts() {
    let pom = read("scripts/kafka/pom.xml");
    let version = pom
        .split("<kafka.version>")
        .nth(1)
        .and_then(|rest| rest.split("</kafka.version>").next())
        .expect("kafka.version in the pom");
    let image = compose().services["kafka"].image.clone().expect("image");
    assert_eq!(image, format!("apache/kafka:{version}"));
    assert!(version.starts_with("4."), "Kafka 4.x, got {version}");
}

#[test]
fn dockerfile_runs_the_protobus_binary() {
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains(r#"ENTRYPOINT ["protobus"]"#));
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("--bin protobus"));
}

/// The environment variables examples/consumer.rs reads (its `env = "…"`).
fn example_consumer_env() -> BTreeSet<String> {
    read("examples/consumer.rs")
        .split("env = \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_example_consumer_service_runs_the_built_example_with_what_it_reads() {
    let compose = compose();
    let consumer = &compose.services["consumer"];
    assert!(consumer.build.is_some(), "built from the Dockerfile");
    assert_eq!(consumer.entrypoint, ["protobus-example-consumer"]);
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("--example consumer"));
    assert!(dockerfile.contains(
        "/src/target/release/examples/consumer /usr/local/bin/protobus-example-consumer"
    ));

    let accepted = example_consumer_env();
    for variable in consumer.environment.keys() {
        assert!(
            accepted.contains(variable),
            "the example consumer reads no {variable} (it reads {accepted:?})"
        );
    }
    let advertised = &compose.services["kafka"].environment["KAFKA_ADVERTISED_LISTENERS"];
    let bootstrap = &consumer.environment["KAFKA_BOOTSTRAP_SERVERS"];
    assert!(advertised.contains(&format!("//{bootstrap}")));
    assert_eq!(
        consumer.environment["SCHEMA_REGISTRY_URL"],
        compose.services["ingest"].environment["SCHEMA_REGISTRY_URL"]
    );
    // Its metrics endpoint is published and is what the health check asks.
    let metrics = port_of(&consumer.environment["PROTOBUS_METRICS_LISTEN"]);
    assert_eq!(published(consumer), BTreeMap::from([(metrics, metrics)]));
    let check = format!("{:?}", consumer.healthcheck);
    assert!(
        check.contains(&format!("127.0.0.1:{metrics}/metrics")),
        "{check}"
    );
}

/// `docker compose --profile cluster` is the cluster of `scripts/kafka.sh
/// cluster`: one controller and three brokers on the same host ports, with
/// the same replication settings.
#[test]
fn the_cluster_profile_is_the_scripts_cluster() {
    let compose = compose();
    let cluster: BTreeMap<&str, &Service> = compose
        .services
        .iter()
        .filter(|(_, s)| s.profiles.iter().any(|p| p == "cluster"))
        .map(|(n, s)| (n.as_str(), s))
        .collect();
    assert_eq!(
        cluster.keys().copied().collect::<Vec<_>>(),
        ["kafka-1", "kafka-2", "kafka-3", "kafka-controller"]
    );
    let script = read("scripts/kafka.sh");
    let image = compose.services["kafka"].image.clone();
    let mut bootstrap = Vec::new();
    for n in 1..=3 {
        let broker = cluster[format!("kafka-{n}").as_str()];
        assert_eq!(broker.image, image, "kafka-{n} runs the pinned broker");
        let env = &broker.environment;
        assert_eq!(env["KAFKA_NODE_ID"], n.to_string());
        assert_eq!(env["KAFKA_PROCESS_ROLES"], "broker");
        let port = 19090 + n;
        assert_eq!(published(broker), BTreeMap::from([(port, port)]));
        assert!(env["KAFKA_ADVERTISED_LISTENERS"].contains(&format!("//127.0.0.1:{port}")));
        bootstrap.push(format!("127.0.0.1:{port}"));
        for setting in [
            "default.replication.factor",
            "min.insync.replicas",
            "auto.create.topics.enable",
            "unclean.leader.election.enable",
            "offsets.topic.replication.factor",
            "transaction.state.log.replication.factor",
            "transaction.state.log.min.isr",
            "replica.lag.time.max.ms",
        ] {
            let variable = format!("KAFKA_{}", setting.replace('.', "_").to_uppercase());
            let value = env
                .get(&variable)
                .unwrap_or_else(|| panic!("kafka-{n} does not set {variable}"));
            assert!(
                script.contains(&format!("\n{setting}={value}\n")),
                "kafka-{n}: {setting}={value} is not what scripts/kafka.sh sets"
            );
        }
    }
    assert!(
        script.contains(&format!("cluster_bootstrap=\"{}\"", bootstrap.join(","))),
        "the brokers' ports are not the script's"
    );
    let controller = &cluster["kafka-controller"].environment;
    assert_eq!(controller["KAFKA_PROCESS_ROLES"], "controller");
    assert_eq!(controller["KAFKA_NODE_ID"], "0");
}
