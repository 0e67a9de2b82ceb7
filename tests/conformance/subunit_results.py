"""Turns a subunit v2 stream (``stestr last --subunit``) on stdin into JSON on
stdout: one object per test with its id, status (``success``, ``fail``,
``skip``...) and details (``traceback``, ``pythonlogging``, ``reason``) as text.

Run by the Python of ``.venv-tempest`` (it imports python-subunit and
testtools, which tempest brings), not by ours.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import subunit
import testtools


def _text(content: Any) -> str:
    try:
        return str(content.as_text())
    except (UnicodeDecodeError, ValueError):
        return b"".join(content.iter_bytes()).decode("utf-8", "replace")


def main() -> None:
    tests: list[dict[str, Any]] = []

    def record(test: dict[str, Any]) -> None:
        details = {name: _text(content) for name, content in test["details"].items()}
        tests.append({"id": test["id"], "status": test["status"], "details": details})

    stream = subunit.ByteStreamToStreamResult(sys.stdin.buffer, non_subunit_name="stdout")
    result = testtools.StreamToDict(record)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    json.dump(tests, sys.stdout)


if __name__ == "__main__":
    main()
