"""A stand-in for socket.getaddrinfo that answers as scripted and records every call."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeResolver:
    answers: list[list[str] | OSError]
    """One answer per call (addresses, or an error to raise); the last one repeats."""
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, host: str, port: int, family: int = 0, type: int = 0) -> list[tuple[Any, ...]]:
        self.calls.append((host, port))
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(answer, OSError):
            raise answer
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)) if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answer
        ]


def resolving(*addresses: str) -> FakeResolver:
    return FakeResolver([list(addresses)])
