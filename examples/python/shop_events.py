"""The Python recipe for a Protobus contract: Confluent's Protobuf
deserializer reads Protobus events with the classes generated from the
exported contract, its serializer writes events Protobus consumers read, and
the generated gRPC stub publishes through the Protobus ingest service.

    python shop_events.py consume --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081 --topic shop.orders --count 10
    python shop_events.py produce --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081 --topic shop.orders --count 10
    python shop_events.py publish --ingest 127.0.0.1:50051 --count 10

Each event is printed as one JSON line: its type, key, headers and the
event in proto3 JSON. The classes are imported from ./gen (generate.sh).
"""
import argparse
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_record_subject_name_strategy  # noqa: E402
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from protobus.ingest.v1 import ingest_pb2, ingest_pb2_grpc  # noqa: E402
from shop.orders.v1 import orders_pb2  # noqa: E402

# The event types of the topic, by the name Protobus puts in the
# protobus-event-type header: a topic may carry several.
ORDER_TYPES = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (orders_pb2.OrderPlaced, orders_pb2.OrderPaid, orders_pb2.OrderShipped)
}


def line(type_name, key, headers, event):
    return json.dumps({
        "type": type_name,
        "key": key,
        "headers": headers,
        "event": json_format.MessageToDict(event),
    })


def consume(args):
    """Reads --count events in a consumer group, committing each once handled."""
    registry = SchemaRegistryClient({"url": args.registry})
    deserializers = {
        name: ProtobufDeserializer(cls, {"use.deprecated.format": False}, registry)
        for name, cls in ORDER_TYPES.items()
    }
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([args.topic])
    read, idle = 0, 0
    while read < args.count:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            if idle > args.timeout:
                raise SystemExit(f"read only {read} of {args.count} events")
            continue
        if msg.error():
            raise SystemExit(str(msg.error()))
        headers = {k: v.decode() for k, v in (msg.headers() or [])}
        type_name = headers["protobus-event-type"]
        event = deserializers[type_name](msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        print(line(type_name, msg.key().decode(), headers, event), flush=True)
        consumer.commit(message=msg, asynchronous=False)
        read += 1
    consumer.close()


def order(prefix, i):
    event = orders_pb2.OrderPlaced(
        order_id=f"{prefix}-order-{i}",
        customer_id=f"{prefix}-customer-{i}",
        coupon_code=prefix.upper(),
    )
    item = event.lines.add(sku=f"{prefix}-sku-{i}", quantity=i % 3 + 1)
    item.unit_price.currency = "EUR"
    item.unit_price.minor_units = 250 * (i + 1)
    event.total.currency = "EUR"
    event.total.minor_units = 250 * (i + 1) * (i % 3 + 1)
    event.placed_at.seconds = 1_800_000_000 + i
    return event


def produce(args):
    """Writes --count OrderPlaced events with Confluent's serializer, with the
    headers Protobus consumers read (event id, type, correlation id)."""
    registry = SchemaRegistryClient({"url": args.registry})
    serialize = ProtobufSerializer(orders_pb2.OrderPlaced, registry, {
        "use.deprecated.format": False,
        # Protobus's default subject: <topic>-<full type name>.
        "subject.name.strategy": topic_record_subject_name_strategy,
    })
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True, "acks": "all"})
    sent = []
    for i in range(args.count):
        event = order(args.id_prefix, i)
        headers = {
            "protobus-event-id": str(uuid.uuid4()),
            "protobus-event-type": event.DESCRIPTOR.full_name,
            "protobus-correlation-id": f"{args.id_prefix}-checkout-{i}",
        }
        value = serialize(event, SerializationContext(args.topic, MessageField.VALUE))
        producer.produce(args.topic, key=event.order_id.encode(), value=value,
                         headers=[(k, v.encode()) for k, v in headers.items()])
        sent.append(line(event.DESCRIPTOR.full_name, event.order_id, headers, event))
    if producer.flush(30) != 0:
        raise SystemExit("not every event was acknowledged")
    print("\n".join(sent), flush=True)


def publish(args):
    """Publishes --count OrderPlaced events through the ingest service."""
    import grpc

    events = [order(args.id_prefix, i) for i in range(args.count)]
    request = ingest_pb2.PublishRequest(request_id=1, events=[
        ingest_pb2.Event(
            type=event.DESCRIPTOR.full_name,
            binary=event.SerializeToString(),
            correlation_id=f"{args.id_prefix}-checkout-{i}",
            headers=[ingest_pb2.Header(key="x-origin", value=b"python-recipe")],
        )
        for i, event in enumerate(events)
    ])
    with grpc.insecure_channel(args.ingest) as channel:
        response = ingest_pb2_grpc.IngestStub(channel).Publish(request, timeout=30)
    for i, (event, result) in enumerate(zip(events, response.results)):
        if not result.HasField("ack"):
            raise SystemExit(f"event {i}: {result.failure}")
        headers = {
            "protobus-event-id": result.ack.event_id,
            "protobus-correlation-id": f"{args.id_prefix}-checkout-{i}",
            "x-origin": "python-recipe",
        }
        print(line(event.DESCRIPTOR.full_name, event.order_id, headers, event), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("consume", "produce"):
        command = commands.add_parser(name)
        command.add_argument("--bootstrap", default="127.0.0.1:9092")
        command.add_argument("--registry", default="http://127.0.0.1:8081")
        command.add_argument("--topic", default="shop.orders")
    commands.choices["consume"].add_argument("--group", default="shop-events-python")
    commands.choices["consume"].add_argument("--timeout", type=int, default=60, help="seconds without an event")
    commands.add_parser("publish").add_argument("--ingest", default="127.0.0.1:50051")
    for command in commands.choices.values():
        command.add_argument("--count", type=int, default=1)
        command.add_argument("--id-prefix", default="py")
    args = parser.parse_args()
    {"consume": consume, "produce": produce, "publish": publish}[args.command](args)


if __name__ == "__main__":
    main()
