"""What both conformance tests share: finding the suites' virtualenvs, the
environment their subprocesses run in, and the report of what an upstream
suite said (counts, and for every test that did not pass its name and the
gist of its error)."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSED = "passed"
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@dataclass(frozen=True)
class Outcome:
    """One upstream test: its name, ``passed``/``failed``/``skipped``, and what went wrong."""

    name: str
    status: str
    summary: str = ""


def require_venv(name: str, executable: str) -> Path:
    """The virtualenv ``name`` under the repository, which ``make test`` creates; skips
    (fails under CI) when it is missing."""
    venv = ROOT / name
    if not (venv / "bin" / executable).exists() or not (venv / ".installed").exists():
        message = f"no {name}: run make test (it installs the pinned {name} the conformance suites use)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return venv


def subprocess_env(**extra: str) -> dict[str, str]:
    """Our environment without proxies (everything the suites reach is on loopback)."""
    env = {key: value for key, value in os.environ.items()
           if key.lower() not in _PROXY_VARIABLES and not key.startswith("PYTEST_")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def error_gist(traceback_text: str, max_lines: int = 12) -> str:
    """The exception lines of a traceback: what follows its last frame."""
    lines = [line for line in traceback_text.rstrip().splitlines() if line.strip() and not set(line.strip()) <= set("^~")]
    frames = [i for i, line in enumerate(lines) if line.lstrip().startswith('File "')]
    if frames:
        lines = lines[frames[-1] + 1:]
        while lines and lines[0].startswith("    "):
            lines = lines[1:]  # the source line of that frame
    text = "\n".join(lines[:max_lines])
    return text if len(text) < 3000 else text[:3000] + " ..."


def report(suite: str, outcomes: Iterable[Outcome], expected: int) -> tuple[str, bool]:
    """A readable account of a run, and whether it is the full pass: ``expected``
    tests, every one of them passed."""
    outcomes = list(outcomes)
    counts = Counter(outcome.status for outcome in outcomes)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    lines = [f"{suite}: {len(outcomes)} tests reported (expected {expected}): {summary or 'nothing'}"]
    for outcome in outcomes:
        if outcome.status != PASSED:
            lines.append(f"\n{outcome.status.upper()}: {outcome.name}")
            lines.extend("    " + line for line in outcome.summary.splitlines())
    ok = len(outcomes) == expected and counts[PASSED] == expected
    return "\n".join(lines), ok


def short_test_id(test_id: str) -> str:
    """``pkg.mod.Class.test_x[id-...,negative]`` without the tempest tags."""
    return re.sub(r"\[[^\]]*\]$", "", test_id)
