"""Lambda budgets: deployment package size and cold-start import time.

``python -m bench.budget`` runs ``chalice package``, reports the zip's size
zipped and unzipped, then times ``import app`` from the unzipped package in
a fresh interpreter of a bare virtualenv (nothing installed: what Lambda
has, less boto3), as shipped (heavy modules load when a request needs
them) and with its dependencies imported eagerly, in the same run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EAGER = "import sqlalchemy, alembic, pymongo, redis, redis.cluster, Cryptodome.Cipher.AES, pg8000"
BUDGET_MB = 10.0  # zipped, the budget
COLD_RATIO = 0.6  # the shipped cold import at most this share of the eager one
RUNS = 7


def _time(python: Path, unpacked: Path, statement: str) -> float:
    probe = ("import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
             f"{statement}; print((time.perf_counter() - t) * 1000)")
    samples = []
    for _ in range(RUNS):
        out = subprocess.run([str(python), "-c", probe, str(unpacked)], capture_output=True, text=True, check=True,
                             env={"PATH": os.environ.get("PATH", "")}, timeout=120)
        samples.append(float(out.stdout))
    return statistics.median(samples)


def main() -> int:
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    with tempfile.TemporaryDirectory(prefix="zaqar-budget-") as tmp:
        out = Path(tmp) / "package"
        subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", "--stage", "dev", str(out)],
                       cwd=ROOT, check=True, env=env, capture_output=True, timeout=600)
        archive = out / "deployment.zip"
        zipped = archive.stat().st_size
        unpacked_size = sum(info.file_size for info in zipfile.ZipFile(archive).infolist())
        unpacked = Path(tmp) / "lambda"
        zipfile.ZipFile(archive).extractall(unpacked)
        bare = Path(tmp) / "bare"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
        python = bare / "bin" / "python"
        lazy = _time(python, unpacked, "import app")
        eager = _time(python, unpacked, f"{EAGER}; import app")
    within = "within" if zipped / 1e6 <= BUDGET_MB else "OVER"
    print(f"deployment package: {zipped / 1e6:.1f} MB zipped ({within} the {BUDGET_MB:.0f} MB budget), "
          f"{unpacked_size / 1e6:.1f} MB unzipped")
    ratio = lazy / eager
    print(f"cold import of app.py (median of {RUNS} fresh interpreters): {lazy:.0f} ms as shipped, "
          f"{eager:.0f} ms with its dependencies imported eagerly: {ratio:.2f}x "
          f"({'within' if ratio <= COLD_RATIO else 'OVER'} the {COLD_RATIO}x budget)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
