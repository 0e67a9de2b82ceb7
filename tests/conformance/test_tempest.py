"""zaqar-tempest-plugin 4.3.0 on tempest 47.0.0 (``.venv-tempest``), upstream's
API suite, against the local stack with ``AUTH_STRATEGY=keystone``: a real
Keystone whose catalog lists the stack as the ``messaging`` service, dynamic
credentials (tempest makes a project and a member user per test class through
the admin account). Fails when any of the plugin's tests does not pass, naming
each with its error and the requests it made."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.embedded_redis import EmbeddedRedis
from tests.conformance.harness import PASSED, Outcome, error_gist, report, require_venv, short_test_id, subprocess_env
from tests.e2e.conftest import Stack, _start_stack
from tests.e2e.test_openstack_cli import _register_messaging_endpoint
from tests.keystone_server import PASSWORD, Keystone

pytestmark = [pytest.mark.conformance, pytest.mark.e2e, pytest.mark.keystone]

SUITE = "zaqar-tempest-plugin 4.3.0 (tempest 47.0.0)"
EXPECTED_TESTS = 135
TEMPEST_REGEX = r"^zaqar_tempest_plugin\."
RUN_TIMEOUT = 1200  # a full serial run takes about 3 minutes, 140 s of it test_dead_letter_queue's sleeps
STATUSES = {"success": PASSED, "fail": "failed", "skip": "skipped", "xfail": "expected failure",
            "uxsuccess": "unexpected success"}
REQUESTS_SHOWN = 10  # first and last of a test's requests (it may poll)


@pytest.fixture(scope="module")
def tempest_venv() -> Path:
    return require_venv(".venv-tempest", "tempest")


@pytest.fixture(scope="module")
def tempest_stack(tempest_venv: Path, tmp_path_factory: pytest.TempPathFactory, conformance_redis: EmbeddedRedis,
                  tempest_keystone: Keystone) -> Iterator[Stack]:
    """The local stack on database 0 of the conformance Redis, validating tokens with tempest's Keystone."""
    started = contextlib.contextmanager(_start_stack)(
        tmp_path_factory.mktemp("tempest-stack"), f"redis://127.0.0.1:{conformance_redis.port}/0",
        AUTH_STRATEGY="keystone", KEYSTONE_URL=tempest_keystone.url, KEYSTONE_USERNAME="zaqar",
        KEYSTONE_PASSWORD=PASSWORD, KEYSTONE_PROJECT="service",
        # upstream's [trustee]: the user trust+http subscribers delegate to (test_trust_subscription)
        TRUSTEE_USERNAME="zaqar", TRUSTEE_PASSWORD=PASSWORD,
    )
    with started as stack:
        _register_messaging_endpoint(tempest_keystone, stack.http)
        yield stack


def tempest_conf(keystone: Keystone) -> str:
    return f"""[DEFAULT]
log_file = tempest.log

[auth]
use_dynamic_credentials = True
admin_username = admin
admin_password = {PASSWORD}
admin_project_name = admin
admin_domain_name = Default
tempest_roles = member
create_isolated_networks = False

[identity]
uri_v3 = {keystone.url}/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public

[identity-feature-enabled]
api_v3 = True
api_v2 = False

[service_available]
zaqar = True
nova = False
neutron = False
glance = False
cinder = False
swift = False

[messaging]
catalog_type = messaging
"""


def _run_tempest(venv: Path, keystone: Keystone, folder: Path) -> tuple[list[dict[str, Any]], str]:
    """Runs the plugin's tests serially in a fresh workspace; their subunit results as dicts, and tempest's output."""
    env = subprocess_env(HOME=str(folder))  # tempest init records workspaces under ~/.tempest
    workspace = folder / "workspace"
    bin_dir = venv / "bin"
    subprocess.run([str(bin_dir / "tempest"), "init", "--workspace-path", str(folder / "workspaces.yaml"),
                    str(workspace)], env=env, check=True, capture_output=True, timeout=120)
    conf = workspace / "etc" / "tempest.conf"
    conf.write_text(tempest_conf(keystone))
    run = subprocess.run([str(bin_dir / "tempest"), "run", "--serial", "--config-file", str(conf),
                          "--regex", TEMPEST_REGEX], cwd=workspace, env=env, capture_output=True, text=True,
                         timeout=RUN_TIMEOUT)
    output = run.stdout + run.stderr
    (folder / "tempest-run.out").write_text(output)
    stream = subprocess.run([str(bin_dir / "stestr"), "last", "--subunit"], cwd=workspace, env=env,
                            capture_output=True, timeout=120)
    parsed = subprocess.run([str(bin_dir / "python"), str(Path(__file__).with_name("subunit_results.py"))],
                            input=stream.stdout, env=env, capture_output=True, check=True, timeout=120)
    return list(json.loads(parsed.stdout)), output


def _requests_made(log: str) -> list[str]:
    """tempest's rest_client lines: ``Request (Class:test): 400 POST http://... 0.001s``."""
    marker = "[tempest.lib.common.rest_client] "
    return [line.split(marker, 1)[1] for line in log.splitlines() if marker + "Request (" in line]


def outcome_of(test: dict[str, Any]) -> Outcome:
    status = STATUSES.get(test["status"], test["status"])
    details: dict[str, str] = test["details"]
    if status == PASSED:
        return Outcome(short_test_id(test["id"]), status)
    lines = [error_gist(details["traceback"])] if "traceback" in details else []
    if "reason" in details:
        lines.append("reason: " + details["reason"].strip())
    log = "\n".join(text for name, text in details.items() if name.startswith("pythonlogging"))  # "pythonlogging:''"
    requests = _requests_made(log)
    if len(requests) > REQUESTS_SHOWN:
        requests = [*requests[:REQUESTS_SHOWN // 2], "...", *requests[-REQUESTS_SHOWN // 2:]]
    if requests:
        lines.append("requests:")
        lines.extend("  " + request for request in requests)
    return Outcome(short_test_id(test["id"]), status, "\n".join(lines))


@pytest.mark.timeout(RUN_TIMEOUT + 600)
def test_zaqar_tempest_plugin_passes_against_the_stack(tempest_venv: Path, tempest_stack: Stack,
                                                       tempest_keystone: Keystone, tmp_path: Path) -> None:
    tests, output = _run_tempest(tempest_venv, tempest_keystone, tmp_path)
    text, ok = report(SUITE, (outcome_of(test) for test in tests), EXPECTED_TESTS)
    if not tests:
        text += "\n\ntempest printed:\n" + output[-5000:]
    if not ok:
        pytest.fail(text, pytrace=False)
    print(text)  # the counts, for -s / -rP
