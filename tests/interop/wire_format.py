"""Confluent's ProtobufDeserializer and ProtobufSerializer against records
written and read by Protobus, through a real Kafka topic.

Usage: wire_format.py BOOTSTRAP REGISTRY_URL TOPIC GENERATED_DIR COUNT [produce-only]

GENERATED_DIR holds the classes `python -m grpc_tools.protoc --python_out`
generated from the contract's `proto/` directory, as a Python team makes them.

Reads COUNT OrderPlaced events that Protobus produced (checking each field),
then produces COUNT OrderPlaced events of its own (coupon_code "PY-<i>") for
Protobus to read. With "produce-only" it skips the reading, so that its own
registration (a base64 descriptor) is the first one the registry sees.
Exits non-zero on the first mismatch.
"""
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main(bootstrap: str, registry_url: str, topic: str, generated: str, count: int, produce_only: bool) -> None:
    sys.path.insert(0, generated)
    from shop.orders.v1.orders_pb2 import OrderPlaced

    registry = SchemaRegistryClient({"url": registry_url})
    if not produce_only:
        read(OrderPlaced, registry, bootstrap, topic, count)
    write(OrderPlaced, registry, bootstrap, topic, count)


def read(OrderPlaced, registry, bootstrap: str, topic: str, count: int) -> None:

    deserialize = ProtobufDeserializer(OrderPlaced, {"use.deprecated.format": False}, registry)
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"python-{topic}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    seen = 0
    idle = 0
    while seen < count:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            if idle > 60:
                raise AssertionError(f"read only {seen} of {count} records")
            continue
        if msg.error():
            raise AssertionError(msg.error())
        event = deserialize(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        i = int(event.order_id.split("-")[1])
        assert event.coupon_code == f"RS-{i}", event
        assert event.customer_id == f"customer-{i}", event
        assert event.total.currency == "EUR" and event.total.minor_units == 100 * i, event
        assert len(event.lines) == 2 and event.lines[1].quantity == 2, event
        assert event.placed_at.seconds == 1_700_000_000 + i, event
        assert msg.key() == event.order_id.encode(), msg.key()
        headers = dict(msg.headers() or [])
        assert headers.get("protobus-event-type") == b"shop.orders.v1.OrderPlaced", headers
        seen += 1
    consumer.close()
    print(f"python read {seen} Protobus records")


def write(OrderPlaced, registry, bootstrap: str, topic: str, count: int) -> None:
    serialize = ProtobufSerializer(OrderPlaced, registry, {
        "use.deprecated.format": False,
        "subject.name.strategy": topic_record_subject_name_strategy,
    })
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(count):
        event = OrderPlaced(order_id=f"order-{1000 + i}", customer_id=f"customer-{i}", coupon_code=f"PY-{i}")
        event.total.currency = "USD"
        event.total.minor_units = 7 * i
        event.placed_at.seconds = 1_800_000_000 + i
        line = event.lines.add()
        line.sku = f"py-sku-{i}"
        line.quantity = 3
        value = serialize(event, SerializationContext(topic, MessageField.VALUE))
        producer.produce(topic, key=event.order_id.encode(), value=value)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} records not delivered"
    print(f"python wrote {count} records")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:] == ["produce-only"])
