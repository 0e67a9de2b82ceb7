"""What the catalog says about a pool (kept apart so routing code need not import SQLAlchemy)."""

from __future__ import annotations

import dataclasses
from typing import Any

DEFAULT_POOL = "default"


@dataclasses.dataclass(frozen=True)
class Pool:
    name: str
    uri: str
    weight: int
    flavor: str | None
    options: dict[str, Any]
