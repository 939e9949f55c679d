//! What `protobus topics apply` and `protobus registry` create on a
//! three-broker cluster, read back from the brokers.

use crate::{common, harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_the_schemas_log_are_replicated_as_declared() {
    let cluster = harness::cluster().await;
    let prefix = format!("{}.", common::unique_name("provision"));
    cluster.apply_topics(&prefix);

    for (topic, partitions, retention) in [
        ("shop.orders", 3, Some("604800000")),
        ("shop.orders.dlq", 1, Some("2419200000")),
        ("shop.customers", 1, None),
        ("shop.customers.dlq", 1, None),
    ] {
        let topic = format!("{prefix}{topic}");
        let layout = cluster.partitions(&topic);
        assert_eq!(layout.len(), partitions, "{topic}: {layout:?}");
        assert!(
            layout.iter().all(|p| p.replicas.len() == 3),
            "{topic}: replication factor 3 by default on three brokers: {layout:?}"
        );
        let configs = common::topic_configs(&cluster.config(), &topic).await;
        assert_eq!(configs["min.insync.replicas"], "2", "{topic}");
        if let Some(retention) = retention {
            assert_eq!(configs["retention.ms"], retention, "{topic}");
        }
    }

    let schemas = common::unique_name("_schemas");
    let (_registry, _url) = cluster.registry(&schemas).await;
    let layout = cluster.partitions(&schemas);
    assert_eq!(layout.len(), 1, "{layout:?}");
    assert_eq!(layout[0].replicas.len(), 3, "{layout:?}");
    let configs = common::topic_configs(&cluster.config(), &schemas).await;
    assert_eq!(configs["cleanup.policy"], "compact");
    assert_eq!(configs["min.insync.replicas"], "2");
}
