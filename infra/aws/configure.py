"""Turn the infrastructure stack's outputs into the Chalice stage's settings.

Used by ``infra/aws/deploy.sh`` between ``aws cloudformation deploy`` and
``chalice deploy``: it writes the stage's environment variables, VPC
settings and per-function settings into ``.chalice/config.json`` and renders
the stage's least-privilege policy (``.chalice/policy-<stage>.json``) from
``infra/aws/policy.template.json``.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Path(__file__).with_name("policy.template.json")


def render_policy(values: dict[str, str]) -> dict[str, Any]:
    """The policy with ${...} placeholders filled in; a missing value is an error."""
    text = string.Template(TEMPLATE.read_text()).substitute(values)
    policy: dict[str, Any] = json.loads(text)
    return policy


def stage_settings(stage: str, outputs: dict[str, str], extra: dict[str, str]) -> dict[str, Any]:
    env = {
        "POOL_URL": outputs["PoolUrl"],
        "EVENT_STREAM": outputs["EventStreamName"],
        "RETRY_QUEUE": outputs["RetryQueueName"],
        "SES_SENDER": outputs["SesSender"],
        "STATE_URL": outputs["PoolUrl"],
        **extra,
    }
    return {
        "api_gateway_stage": "v1",
        "environment_variables": env,
        "subnet_ids": outputs["SubnetIds"].split(","),
        "security_group_ids": [outputs["SecurityGroupId"]],
        "autogen_policy": False,
        "iam_policy_file": f"policy-{stage}.json",
        "lambda_memory_size": 512,
        "lambda_timeout": 30,
        "lambda_functions": {
            "deliver": {"lambda_timeout": 120, "reserved_concurrency": 20},
            "retry": {"lambda_timeout": 120},
            "relay": {"lambda_timeout": 60},
            "housekeeping": {"lambda_timeout": 120},
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--outputs", required=True, help="JSON of describe-stacks Outputs")
    parser.add_argument("--region", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--websocket-api-id", default="*")
    parser.add_argument("--set", action="append", default=[], help="extra NAME=VALUE environment variables")
    args = parser.parse_args(argv)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in json.loads(args.outputs)}
    extra = dict(item.split("=", 1) for item in args.set)
    if args.websocket_api_id != "*":
        extra["WEBSOCKET_API_ID"] = args.websocket_api_id
        extra["WEBSOCKET_STAGE"] = "v1"
    config_path = ROOT / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    stage = config["stages"].setdefault(args.stage, {})
    settings = stage_settings(args.stage, outputs, extra)
    stage.update({k: v for k, v in settings.items() if k != "environment_variables"})
    stage.setdefault("environment_variables", {}).update(settings["environment_variables"])
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    policy = render_policy({
        "partition": "aws", "region": args.region, "account": args.account, "stage": "v1",
        "stream_arn": outputs["EventStreamArn"], "retry_queue_arn": outputs["RetryQueueArn"],
        "sender": outputs["SesSender"], "websocket_api_id": args.websocket_api_id,
    })
    (ROOT / ".chalice" / f"policy-{args.stage}.json").write_text(json.dumps(policy, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
