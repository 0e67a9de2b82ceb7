"""What checking request bodies against the published schemas costs, with each engine we could use.

Each engine is imported in a fresh interpreter (after the app itself, as a Lambda container has it) and
then checks a one-message and a ten-message post many times. Printed: import milliseconds, the first
check (compiling the schema) and microseconds per check, and fastjsonschema's figures as a ratio of
jsonschema's. Run with ``make bench-validation``.
"""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = r"""
import json, sys, time
import app  # what a container has imported before its first request
engine = sys.argv[1]
from chalicelib.config import Limits
from chalicelib.openapi import schemas
shared = schemas(Limits())
started = time.perf_counter()
if engine == "jsonschema":
    import jsonschema
    imported = time.perf_counter()
    text = json.dumps({**shared["MessagePost"], "$defs": shared}).replace("#/components/schemas/", "#/$defs/")
    check = jsonschema.Draft202012Validator(json.loads(text)).validate
else:
    import fastjsonschema
    imported = time.perf_counter()
    from chalicelib.api import bodies
    check = bodies.compiled("MessagePost", Limits())
one = {"messages": [{"body": {"event": "order.created", "id": 1}, "ttl": 300}]}
ten = {"messages": [{"body": {"event": "order.created", "id": n}, "ttl": 300} for n in range(10)]}
check(one)
compiled = time.perf_counter()
rounds = 20000
t0 = time.perf_counter()
for _ in range(rounds):
    check(one)
t1 = time.perf_counter()
for _ in range(rounds // 10):
    check(ten)
t2 = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1e3, "first_ms": (compiled - imported) * 1e3,
                  "one_us": (t1 - t0) / rounds * 1e6, "ten_us": (t2 - t1) / (rounds // 10) * 1e6}))
"""


def measure(engine: str, runs: int = 5) -> dict[str, float]:
    """The median of each figure over ``runs`` fresh interpreters."""
    samples = [json.loads(subprocess.run([sys.executable, "-c", _PROBE, engine], check=True, capture_output=True,
                                         text=True).stdout) for _ in range(runs)]
    return {key: sorted(s[key] for s in samples)[runs // 2] for key in samples[0]}


def main() -> int:
    reference, ours = measure("jsonschema"), measure("fastjsonschema")
    print(f"{'':24}{'jsonschema':>12}{'fastjsonschema':>16}{'ratio':>8}")
    for key, label in (("import_ms", "import (ms)"), ("first_ms", "compile + 1st check (ms)"),
                       ("one_us", "1-message post (µs)"), ("ten_us", "10-message post (µs)")):
        print(f"{label:24}{reference[key]:12.2f}{ours[key]:16.2f}{ours[key] / reference[key]:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
