"""The `openstack messaging` CLI against a noauth local stack: it sends no X-Project-ID, so it works when
DEFAULT_PROJECT is set and gets the 400 that names the header when it is not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _delete_project_keys
from tests.e2e.conftest import Stack, _start_stack

pytestmark = pytest.mark.e2e
OPENSTACK = Path(sys.executable).parent / "openstack"


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OS_AUTH_TYPE": "none", "OS_ENDPOINT": url, "OS_MESSAGE_API_VERSION": "2",
           "OS_MESSAGE_CLIENT_ID": "5a2a3f4e-2a0e-4c1e-9f6a-1d2e3f4a5b6c"}
    for name in [k for k in env if k.startswith("OS_") and k not in {"OS_AUTH_TYPE", "OS_ENDPOINT",
                                                                   "OS_MESSAGE_API_VERSION", "OS_MESSAGE_CLIENT_ID"}]:
        del env[name]
    return subprocess.run([str(OPENSTACK), "messaging", *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def default_project() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def defaulting_stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str,
                     default_project: str) -> Iterator[Stack]:
    yield from _start_stack(tmp_path_factory.mktemp("default-project-stack"), redis_url,
                            DEFAULT_PROJECT=default_project)
    _delete_project_keys(redis_url, default_project)


def test_the_cli_works_against_noauth_with_a_default_project(defaulting_stack: Stack, default_project: str) -> None:
    def ok(*args: str) -> str:
        result = _cli(defaulting_stack.http, *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    ok("queue", "create", "cli-queue")
    ok("message", "post", "cli-queue", json.dumps([{"body": {"from": "cli"}, "ttl": 300}]))
    listed = json.loads(ok("message", "list", "cli-queue", "--echo", "-f", "json"))
    assert [m["Body"] for m in listed] == [{"from": "cli"}]
    request = urllib.request.Request(f"{defaulting_stack.http}/v2/queues", headers={
        "Client-ID": str(uuid.uuid4()), "X-Project-ID": default_project})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as reply:
        assert [q["name"] for q in json.loads(reply.read())["queues"]] == ["cli-queue"]  # the default project's


def test_without_a_default_project_the_cli_is_told_x_project_id_is_missing(stack: Stack) -> None:
    result = _cli(stack.http, "queue", "list")
    assert result.returncode != 0 and "X-Project-ID" in result.stdout + result.stderr
