"""The `openstack messaging` CLI (python-openstackclient with python-zaqarclient's
plugin) against the local stack, authenticating through the test Keystone
whose catalog lists the stack as the messaging service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _delete_project_keys
from tests.keystone_server import PASSWORD, Keystone

pytestmark = [pytest.mark.e2e, pytest.mark.keystone]
OPENSTACK = Path(sys.executable).parent / "openstack"


def _register_messaging_endpoint(keystone: Keystone, url: str) -> None:
    admin = keystone.token("admin", "admin")
    status, _, found = keystone.call("GET", "/v3/services?type=messaging", token=admin)
    if found["services"]:
        return
    status, _, service = keystone.call("POST", "/v3/services", {"service": {"type": "messaging", "name": "zaqar"}},
                                       token=admin)
    assert status == 201
    for interface in ("public", "internal", "admin"):
        status, _, _ = keystone.call("POST", "/v3/endpoints", {"endpoint": {
            "service_id": service["service"]["id"], "interface": interface, "url": url, "region_id": "RegionOne"}},
            token=admin)
        assert status == 201


def test_openstack_messaging_cli_round_trip(keystone_stack: Any, keystone: Keystone, redis_url: str) -> None:
    _register_messaging_endpoint(keystone, keystone_stack.http)
    env = {**os.environ, "OS_AUTH_URL": f"{keystone.url}/v3", "OS_USERNAME": "alice", "OS_PASSWORD": PASSWORD,
           "OS_PROJECT_NAME": "alpha", "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
           "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public", "OS_REGION_NAME": "RegionOne",
           "OS_MESSAGE_API_VERSION": "2", "OS_MESSAGE_CLIENT_ID": "5a2a3f4e-2a0e-4c1e-9f6a-1d2e3f4a5b6c"}

    def cli(*args: str) -> str:
        result = subprocess.run([str(OPENSTACK), "messaging", *args], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout

    try:
        cli("queue", "create", "cli-queue")
        cli("message", "post", "cli-queue", json.dumps([{"body": {"from": "cli"}, "ttl": 300}]))
        listed = json.loads(cli("message", "list", "cli-queue", "--echo", "-f", "json"))
        assert [m["Body"] for m in listed] == [{"from": "cli"}]
        assert "cli-queue" in cli("queue", "list", "-f", "value")
        stats = json.loads(cli("queue", "stats", "cli-queue", "-f", "json"))["Stats"]["messages"]
        assert (stats["total"], stats["free"], stats["claimed"]) == (1, 1, 0)
        cli("queue", "delete", "cli-queue")
        assert "cli-queue" not in cli("queue", "list", "-f", "value")
    finally:
        _delete_project_keys(redis_url, keystone.projects["alpha"])
