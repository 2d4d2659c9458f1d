"""Creates the table and queues on the local emulator from `infra/template.yaml`, the same
definition `make package` merges into the deployed stack, so local and test resources cannot drift
from production."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def resources_of(kind: str, template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    template = template or load_template()
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def table_definition(table_name: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """CreateTable arguments for the template's one table."""
    (props,) = [res["Properties"] for res in resources_of("AWS::DynamoDB::Table", template).values()]
    args: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if props.get("StreamSpecification"):
        args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
    return args


def queue_name(logical_id: str, stage: str) -> str:
    return f"retail-{stage}-{logical_id}"


def create_all(endpoint: str, region: str, table_name: str, stage: str) -> dict[str, Any]:
    """Create (or find) the table and every queue; returns {"table": name, "stream_arn", "queues": {logical: url}}."""
    session = boto3.session.Session(region_name=region)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    template = load_template()

    definition = table_definition(table_name, template)
    existing = dynamodb.list_tables()["TableNames"]
    if table_name not in existing:
        dynamodb.create_table(**definition)
        (props,) = [r["Properties"] for r in resources_of("AWS::DynamoDB::Table", template).values()]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    description = dynamodb.describe_table(TableName=table_name)["Table"]

    queues: dict[str, str] = {}
    queue_defs = resources_of("AWS::SQS::Queue", template)
    # Dead-letter queues first, so a redrive policy can point at them.
    ordered = sorted(queue_defs.items(), key=lambda kv: "RedrivePolicy" in kv[1].get("Properties", {}))
    for logical_id, res in ordered:
        props = res.get("Properties", {})
        attributes: dict[str, str] = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in props:
                attributes[key] = str(props[key])
        redrive = props.get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
            dlq_url = queues[target]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(redrive["maxReceiveCount"])}
            )
        created = sqs.create_queue(QueueName=queue_name(logical_id, stage), Attributes=attributes)
        queues[logical_id] = created["QueueUrl"]
    return {"table": table_name, "stream_arn": description.get("LatestStreamArn"), "queues": queues}


def wait_for(endpoint: str, timeout_s: float = 20.0) -> None:
    """Block until the emulator answers."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no emulator at {endpoint}") from None
            time.sleep(0.1)
