"""Schemathesis against the document the stack serves: requests generated from
``GET /openapi.json`` for every operation, both ones that fit the schemas and
ones that break them, over real HTTP to the local stack. No answer may be a
server error, and every answer must be a status, content type and body the
document lists.

``FUZZ_EXAMPLES`` (default 20) sets how many requests per operation and mode.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [content_type_conformance, status_code_conformance, response_schema_conformance]


@schemathesis.serializer("application/openstack-messaging-v2.0-json-patch")
def _json_patch(_context: Any, value: Any) -> bytes:
    """Queue metadata patches are JSON under Zaqar's own media type."""
    return json.dumps(value).encode()


def _fuzz(operation: Any, mode: GenerationMode, stack: Stack, project: str, session: requests.Session,
          sent: list[int]) -> None:
    # a valid tenant and client, so requests reach the code behind the headers (those are fuzzed elsewhere)
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        sent.append(1)
        case.call_and_validate(base_url=stack.http, session=session, headers=headers, checks=CHECKS, timeout=10)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["fitting", "breaking"])
def test_no_server_errors_and_every_answer_as_described(stack: Stack, project: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.http}/openapi.json")
    failures: list[str] = []
    sent: list[int] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            try:
                _fuzz(operation, mode, stack, project, session, sent)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, f"{operation.path}: no fitting request can be made"
                continue  # nothing in this operation to break (no parameters, no body)
            except (Exception, BaseExceptionGroup) as exc:  # one line per failing operation: every one is listed, not only the first
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc).strip()[:600]}")
    assert not failures, f"{len(failures)} operations failed:\n" + "\n\n".join(failures)
    assert len(sent) >= 10 * EXAMPLES
