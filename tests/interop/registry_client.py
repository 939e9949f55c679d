"""Confluent's own SchemaRegistryClient against the Protobus registry.

Usage: registry_client.py URL. Exits non-zero, with the failing check, when
the registry answers anything Confluent's client does not expect.
"""
import sys

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

MONEY = 'syntax = "proto3";\npackage shop.common;\n\nmessage Money {\n  string currency = 1;\n  int64 units = 2;\n}\n'
ORDER = 'syntax = "proto3";\npackage shop;\n\nimport "shop/common/money.proto";\n\nmessage Order {\n  string id = 1;\n  shop.common.Money total = 2;\n}\n'
ORDER_V2 = ORDER.replace("shop.common.Money total = 2;", "shop.common.Money total = 2;\n  string note = 3;")
BREAKING = ORDER.replace("string id = 1;", "int64 id = 1;")


def main(url: str) -> None:
    client = SchemaRegistryClient({"url": url})
    money_ref = [SchemaReference("shop/common/money.proto", "shop.common.Money", 1)]

    money_id = client.register_schema("shop.common.Money", Schema(MONEY, "PROTOBUF"))
    order = Schema(ORDER, "PROTOBUF", money_ref)
    order_id = client.register_schema("orders-value", order)
    assert order_id != money_id, (order_id, money_id)
    assert client.register_schema("orders-value", order) == order_id, "same schema, same id"

    found = client.lookup_schema("orders-value", order)
    assert (found.schema_id, found.subject, found.version) == (order_id, "orders-value", 1), found

    client_without_cache = SchemaRegistryClient({"url": url})
    fetched = client_without_cache.get_schema(order_id)
    assert fetched.schema_type == "PROTOBUF", fetched.schema_type
    assert fetched.schema_str == ORDER, fetched.schema_str
    assert [(r.name, r.subject, r.version) for r in fetched.references] == [
        ("shop/common/money.proto", "shop.common.Money", 1)
    ], fetched.references

    latest = client_without_cache.get_latest_version("orders-value")
    assert (latest.schema_id, latest.version) == (order_id, 1), latest
    assert client_without_cache.get_versions("orders-value") == [1]
    assert sorted(client_without_cache.get_subjects()) == ["orders-value", "shop.common.Money"]

    assert client.test_compatibility("orders-value", Schema(ORDER_V2, "PROTOBUF", money_ref)) is True
    assert client.test_compatibility("orders-value", Schema(BREAKING, "PROTOBUF", money_ref)) is False

    try:
        client.register_schema("orders-value", Schema(BREAKING, "PROTOBUF", money_ref))
        raise AssertionError("an incompatible schema was registered")
    except SchemaRegistryError as err:
        assert err.http_status_code == 409 and err.error_code == 409, (err.http_status_code, err.error_code)

    try:
        client_without_cache.get_schema(999_999)
        raise AssertionError("an unknown id was found")
    except SchemaRegistryError as err:
        assert err.http_status_code == 404 and err.error_code == 40403, (err.http_status_code, err.error_code)

    client.set_compatibility("orders-value", "FULL")
    assert client.get_compatibility("orders-value") == "FULL"
    v2_id = client.register_schema("orders-value", Schema(ORDER_V2, "PROTOBUF", money_ref))
    assert client.get_versions("orders-value") == [1, 2]
    assert client.get_latest_version("orders-value").schema_id == v2_id

    print("confluent-kafka SchemaRegistryClient: 14 checks passed")


if __name__ == "__main__":
    main(sys.argv[1])
