"""The functional tests shipped inside the zaqar 23.0.1 package
(``zaqar/tests/functional``: versions, subscription TTLs, websocket queue
listing; 6 tests) run by the pytest of ``.venv-zaqar-functional`` against the
local stack (``noauth``), with ``zaqar_functional_plugin`` turning upstream's
per-test server fork into a no-op and pointing the websocket test at the
stack. Upstream's base class still builds an in-process bootstrap (limits,
response schemas, cleanup): it gets Redis message and management stores on a
database of the conformance Redis of its own."""

from __future__ import annotations

import contextlib
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local.embedded_redis import EmbeddedRedis
from tests.conformance.harness import PASSED, Outcome, report, require_venv, subprocess_env
from tests.e2e.conftest import Stack, _start_stack

pytestmark = [pytest.mark.conformance, pytest.mark.e2e]

SUITE = "zaqar 23.0.1 functional tests (zaqar/tests/functional)"
EXPECTED_TESTS = 6
RUN_TIMEOUT = 600  # two of the tests wait for a 60 s subscription TTL: about 2 minutes in all
STACK_DB, BOOTSTRAP_DB = 1, 2
PLUGIN_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def functional_venv() -> Path:
    return require_venv(".venv-zaqar-functional", "pytest")


@pytest.fixture(scope="module")
def functional_stack(functional_venv: Path, tmp_path_factory: pytest.TempPathFactory,
                     conformance_redis: EmbeddedRedis) -> Iterator[Stack]:
    """The local stack as ``make run`` starts it (noauth), on its own database of the conformance Redis."""
    started = contextlib.contextmanager(_start_stack)(
        tmp_path_factory.mktemp("functional-stack"), f"redis://127.0.0.1:{conformance_redis.port}/{STACK_DB}")
    with started as stack:
        yield stack


def write_configs(folder: Path, stack: Stack, redis_port: int) -> Path:
    """``ZAQAR_TESTS_CONFIGS_DIR``: the server under test, and upstream's bootstrap on Redis instead of MongoDB."""
    folder.mkdir()
    (folder / "functional-tests.conf").write_text(f"[DEFAULT]\nunreliable = True\n\n[zaqar]\nurl = {stack.http}\n")
    store = f"redis://127.0.0.1:{redis_port}?dbid={BOOTSTRAP_DB}"
    for name, transport in (("functional-zaqar.conf", "wsgi"), ("websocket_mongodb.conf", "websocket")):
        (folder / name).write_text(
            "[DEFAULT]\nunreliable = True\n\n"
            f"[drivers]\ntransport = {transport}\nmessage_store = redis\nmanagement_store = redis\n\n"
            f"[drivers:message_store:redis]\nuri = {store}\n\n"
            f"[drivers:management_store:redis]\nuri = {store}\n"
        )
    return folder


def outcomes_of(junit_xml: Path) -> list[Outcome]:
    outcomes = []
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        problems = [child for child in case if child.tag in {"failure", "error", "skipped"}]
        if not problems:
            outcomes.append(Outcome(name, PASSED))
            continue
        status = {"failure": "failed", "error": "error", "skipped": "skipped"}[problems[0].tag]
        lines = []
        for problem in problems:
            # pytest's own "E   " lines (the assertion with both sides), else its one-line message
            explained = [line for line in (problem.text or "").splitlines() if line.startswith("E   ")]
            lines.append(f"{problem.tag}:")
            lines.extend(explained or [problem.get("message", "")[:3000]])
        outcomes.append(Outcome(name, status, "\n".join(lines[:40])))
    return outcomes


@pytest.mark.timeout(RUN_TIMEOUT + 300)
def test_zaqar_functional_tests_pass_against_the_stack(functional_venv: Path, functional_stack: Stack,
                                                       conformance_redis: EmbeddedRedis, tmp_path: Path) -> None:
    configs = write_configs(tmp_path / "etc", functional_stack, conformance_redis.port)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not our pyproject.toml's settings
    results = tmp_path / "results.xml"
    env = subprocess_env(ZAQAR_TEST_INTEGRATION="1", ZAQAR_TESTS_CONFIGS_DIR=str(configs),
                         ZAQAR_FUNCTIONAL_WS_URL=functional_stack.ws, PYTHONPATH=str(PLUGIN_DIR), HOME=str(tmp_path))
    run = subprocess.run(
        [str(functional_venv / "bin" / "python"), "-m", "pytest", "-c", str(tmp_path / "pytest.ini"),
         "--rootdir", str(tmp_path), "-p", "zaqar_functional_plugin", "-p", "no:cacheprovider",
         f"--junitxml={results}", "-v", "--pyargs", "zaqar.tests.functional"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
    )
    output = run.stdout + run.stderr
    outcomes = outcomes_of(results) if results.exists() else []
    text, ok = report(SUITE, outcomes, EXPECTED_TESTS)
    if not outcomes or run.returncode not in (0, 1):
        text += f"\n\nupstream's pytest exited {run.returncode}:\n" + output[-5000:]
        ok = False
    if not ok:
        pytest.fail(text, pytrace=False)
    print(text)  # the counts, for -s / -rP
