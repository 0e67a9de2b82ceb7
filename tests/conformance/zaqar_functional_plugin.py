"""A pytest plugin for upstream Zaqar's functional tests (``zaqar/tests/functional``
of the zaqar 23.0.1 package) run against a server that is already running.

Loaded with ``-p zaqar_functional_plugin`` by the pytest of ``.venv-zaqar-functional``
(not by ours: it imports zaqar). Upstream's base class forks an upstream server
for every test (``Server.start``); here that fork does nothing and reports a
server that is alive, so every request goes to ``[zaqar] url`` of
``functional-tests.conf``. ``websocket/test_queues.py`` connects to a
hard-coded ``ws://localhost:9000/``: that URL is replaced with
``$ZAQAR_FUNCTIONAL_WS_URL``. No test file is changed.
"""

from __future__ import annotations

import os
from typing import Any

import websocket
from zaqar.tests.functional import base

UPSTREAM_WS_URL = "ws://localhost:9000/"


class ExternalServer:
    """Stands in for the forked ``multiprocessing.Process``: alive, and nothing to stop."""

    def is_alive(self) -> bool:
        return True

    def terminate(self) -> None:
        pass


def _start_nothing(self: Any, conf: Any) -> ExternalServer:
    server = ExternalServer()
    self.process = server
    return server


_create_connection = websocket.create_connection


def _create_connection_to_stack(url: str, *args: Any, **kwargs: Any) -> Any:
    if url == UPSTREAM_WS_URL:
        url = os.environ["ZAQAR_FUNCTIONAL_WS_URL"]
    return _create_connection(url, *args, **kwargs)


def pytest_configure(config: Any) -> None:
    base.Server.start = _start_nothing
    websocket.create_connection = _create_connection_to_stack
