"""What can be checked of the AWS deployment without an AWS account."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.aws.configure import render_policy, stage_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AWS_ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "EVENT_STREAM": "zaqar-dev-events", "RETRY_QUEUE": "zaqar-dev-retries"}


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "cfn-lint"), str(path)], capture_output=True, text=True, env=AWS_ENV,
                          timeout=300)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("package") / "out"
    result = subprocess.run(
        [str(BIN / "chalice"), "package", "--stage", "dev", "--merge-template", "infra/aws/merge.json", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=AWS_ENV, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    yield out


def test_the_infrastructure_template_passes_cfn_lint() -> None:
    result = cfn_lint(ROOT / "infra" / "aws" / "stack.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_packaged_app_with_the_merge_template_passes_cfn_lint(package: Path) -> None:
    result = cfn_lint(package / "sam.json")
    assert result.returncode == 0, result.stdout + result.stderr
    resources = json.loads((package / "sam.json").read_text())["Resources"]
    stream = resources["Deliver"]["Properties"]["Events"]["DeliverKinesisEventSource"]["Properties"]
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and stream["BisectBatchOnFunctionError"]
    assert stream["Stream"]["Fn::Sub"].endswith(":stream/zaqar-dev-events")
    queue = resources["Retry"]["Properties"]["Events"]["RetrySqsEventSource"]["Properties"]
    assert queue["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert {"WebsocketConnect", "WebsocketMessage", "WebsocketDisconnect", "Relay", "Housekeeping"} <= set(resources)


def test_the_zip_holds_no_tests_and_no_boto3_and_imports_with_nothing_else(package: Path, tmp_path: Path) -> None:
    archive = package / "deployment.zip"
    names = zipfile.ZipFile(archive).namelist()
    assert not [n for n in names if n.startswith(("tests/", "bench/", "infra/"))]
    assert not [n for n in names if n.startswith(("boto3/", "botocore/", "moto/", "pytest"))]
    assert "app.py" in names and "chalicelib/storage/redis/lua/claim.lua" in names
    unpacked = tmp_path / "lambda"
    zipfile.ZipFile(archive).extractall(unpacked)
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import app; "
             "assert 'boto3' not in sys.modules and 'sqlalchemy' not in sys.modules; print(len(app.app.routes))")
    result = subprocess.run([str(bare / "bin" / "python"), "-c", probe, str(unpacked)], capture_output=True,
                            text=True, timeout=120, env={"PATH": os.environ.get("PATH", "")})
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 10


# -- least privilege -------------------------------------------------------------------

# What each AWS call in the code needs: the method names of the boto3 clients we use.
CALLS = {
    "put_record": "kinesis:PutRecord",
    "get_queue_url": "sqs:GetQueueUrl",
    "send_message": "sqs:SendMessage",
    "send_email": "ses:SendEmail",
    "post_to_connection": "execute-api:ManageConnections",
    "delete_connection": "execute-api:ManageConnections",
}
# What Lambda itself does with the function's role: logs, VPC interfaces, the event source mappings.
PLATFORM = {
    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
    "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:DescribeStreamSummary",
    "kinesis:ListShards", "kinesis:ListStreams",
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
}


def aws_calls_in_code() -> set[str]:
    """Every boto3 client method called in chalicelib (and app.py), found by reading the code."""
    found: set[str] = set()
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CALLS:
                found.add(CALLS[node.func.attr])
    # Chalice's WebsocketAPI.send/close call post_to_connection/delete_connection for us
    if (ROOT / "chalicelib" / "transport" / "aws.py").read_text().count("self._api.send("):
        found.add("execute-api:ManageConnections")
    return found


def test_the_stage_policy_allows_every_call_the_code_makes_and_nothing_else() -> None:
    policy = render_policy({
        "partition": "aws", "region": "us-east-1", "account": "123456789012", "stage": "v1",
        "stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/zaqar-dev-events",
        "retry_queue_arn": "arn:aws:sqs:us-east-1:123456789012:zaqar-dev-retries",
        "sender": "noreply@example.test", "websocket_api_id": "abcdef1234",
    })
    allowed = {action for statement in policy["Statement"] for action in statement["Action"]}
    needed = aws_calls_in_code()
    assert needed == set(CALLS.values())  # the scan found every kind of call we know we make
    assert needed <= allowed
    assert allowed - needed <= PLATFORM, allowed - needed - PLATFORM
    for statement in policy["Statement"]:
        if set(statement["Action"]) & needed:
            assert statement["Resource"] != "*", statement["Sid"]
    websocket = next(s for s in policy["Statement"] if "execute-api:ManageConnections" in s["Action"])
    assert "abcdef1234/v1/" in websocket["Resource"]
    ses = next(s for s in policy["Statement"] if "ses:SendEmail" in s["Action"])
    assert ses["Condition"] == {"StringEquals": {"ses:FromAddress": "noreply@example.test"}}


def test_stack_outputs_become_the_stage_settings() -> None:
    outputs = {"PoolUrl": "rediss://cfg.example:6379/0?cluster=true", "EventStreamName": "zaqar-dev-events",
               "RetryQueueName": "zaqar-dev-retries", "SesSender": "noreply@example.test",
               "SubnetIds": "subnet-1,subnet-2", "SecurityGroupId": "sg-1"}
    settings = stage_settings("dev", outputs, {"CATALOG_URL": "postgresql+pg8000://u:p@h/zaqar"})
    assert settings["environment_variables"]["POOL_URL"].endswith("?cluster=true")
    assert settings["subnet_ids"] == ["subnet-1", "subnet-2"] and settings["iam_policy_file"] == "policy-dev.json"
    assert settings["lambda_functions"]["deliver"]["reserved_concurrency"] == 20
