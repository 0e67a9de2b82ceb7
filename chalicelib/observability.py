"""Structured request logs that are also CloudWatch metrics.

One JSON line per request on stdout, in CloudWatch's embedded metric format:
CloudWatch Logs keeps it as a searchable log (request id, project, queue,
operation, status, latency) and turns ``Latency``, ``Errors`` and
``ServerErrors`` into metrics per operation without any API call. Message
bodies and tokens are never part of it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

NAMESPACE = "ZaqarServerless"
_METRICS = [{"Name": "Latency", "Unit": "Milliseconds"}, {"Name": "Errors", "Unit": "Count"},
            {"Name": "ServerErrors", "Unit": "Count"}]


def request_record(*, transport: str, operation: str, status: int, latency_ms: float, request_id: str | None,
                   project: str | None, queue: str | None) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [["Transport", "Operation"]],
                                   "Metrics": _METRICS}],
        },
        "Transport": transport,
        "Operation": operation,
        "Latency": round(latency_ms, 3),
        "Errors": int(400 <= status < 500),
        "ServerErrors": int(status >= 500),
        "status": status,
        "request_id": request_id,
        "project": project,
        "queue": queue,
    }


def emit(record: dict[str, Any], stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(json.dumps(record, separators=(",", ":")) + "\n")


class JsonFormatter(logging.Formatter):
    """Log records as one JSON object a line (CloudWatch Logs Insights reads the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "aws_request_id", None)
        if request_id:
            document["request_id"] = request_id
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, separators=(",", ":"))


def configure_logging() -> None:
    """JSON lines on Lambda's log handler (or stderr), INFO and up."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(logging.INFO)
