//! The integration tests, one binary with a module per area: each test
//! binary would link the whole workspace again (most of the suite's disk and
//! link time). Every test that needs Kafka, the registry or Python fails when
//! they cannot be reached; `scripts/test.sh` starts what is missing.

mod common;

mod broker_outage;
mod catalog;
mod cli_records;
mod compose_file;
mod confluent_python_client;
mod consumer_batches;
mod consumer_concurrency;
mod consumer_members;
mod consumer_prefetch;
mod consumer_rebalance;
mod consumer_reliability;
mod contract_baseline;
mod contract_cases;
mod contract_evolution;
mod contract_export;
mod dev_command;
mod dlq_cli;
mod example_consumer;
mod fatal_producer;
mod fault_injection;
mod hostile_input;
mod ingest_auth;
mod ingest_contracts;
mod ingest_grpc;
mod ingest_surface;
mod ingest_tls;
mod kafka_consumer_group;
mod kafka_security;
mod lag_cli;
mod metrics;
mod recipes;
mod registration_modes;
mod registry_auth;
mod registry_kafka;
mod registry_memory;
mod registry_tls;
mod schema_cli;
mod schema_registry_converter;
mod topics_apply;
mod trace_propagation;
mod typed_pipeline;
