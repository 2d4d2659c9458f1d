"""The PynamoDB models agree with the table of `infra/template.yaml` (the one that deploys and that
local and test tables are made from): same keys, same indexes, same projections, same TTL attribute.
A model that drifts from the table would work on nothing but a table made from the model."""

from __future__ import annotations

import pytest
from pynamodb.attributes import TTLAttribute

import shared.data.items  # noqa: F401  (registers every item class)
from infra.local.resources import load_template, resources_of
from shared.data.table import INDEXES, KEY_ATTRIBUTES, BaseItem


def _all_item_classes() -> list[type[BaseItem]]:
    found: list[type[BaseItem]] = [BaseItem]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


@pytest.fixture(scope="module")
def deployed_table() -> dict:
    (table,) = resources_of("AWS::DynamoDB::Table", load_template()).values()
    return table["Properties"]


def _keys(key_schema: list[dict]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in key_schema}


def _attribute_types(definitions: list[dict]) -> dict[str, str]:
    return {d["AttributeName"]: d["AttributeType"] for d in definitions}


@pytest.mark.parametrize("item_class", _all_item_classes(), ids=lambda cls: cls.__name__)
def test_item_keys_match_the_table(item_class: type[BaseItem], deployed_table: dict):
    schema = item_class._get_schema()
    assert _keys(schema["key_schema"]) == _keys(deployed_table["KeySchema"])
    assert tuple(_keys(deployed_table["KeySchema"]).values()) == KEY_ATTRIBUTES
    # Every key attribute has the type the table declares (a number key would never match a string one).
    declared = _attribute_types(deployed_table["AttributeDefinitions"])
    assert _attribute_types(schema["attribute_definitions"]) == declared


@pytest.mark.parametrize("item_class", _all_item_classes(), ids=lambda cls: cls.__name__)
def test_item_indexes_match_the_table(item_class: type[BaseItem], deployed_table: dict):
    schema = item_class._get_schema()
    in_model = {
        index["index_name"]: (_keys(index["key_schema"]), index["projection"]["ProjectionType"])
        for index in schema["global_secondary_indexes"]
    }
    in_table = {
        index["IndexName"]: (_keys(index["KeySchema"]), index["Projection"]["ProjectionType"])
        for index in deployed_table["GlobalSecondaryIndexes"]
    }
    assert in_model == in_table
    assert {name: tuple(keys.values()) for name, (keys, _) in in_table.items()} == INDEXES
    assert schema["local_secondary_indexes"] == [] and "LocalSecondaryIndexes" not in deployed_table


def test_the_ttl_attribute_is_the_one_the_table_expires_on(deployed_table: dict):
    ttl_attributes = [name for name, attr in BaseItem.get_attributes().items() if isinstance(attr, TTLAttribute)]
    assert deployed_table["TimeToLiveSpecification"] == {"AttributeName": ttl_attributes[0], "Enabled": True}
    assert len(ttl_attributes) == 1


def test_every_item_class_has_its_own_discriminator():
    subclasses = _all_item_classes()[1:]
    values = [BaseItem._get_discriminator_attribute().get_discriminator(cls) for cls in subclasses]
    assert None not in values
    assert len(set(values)) == len(values)
