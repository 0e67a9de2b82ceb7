"""Upstream OpenStack Zaqar run beside our stack, so both are measured in one run.

``make bench-upstream`` builds ``.venv-upstream`` with zaqar==23.0.1 and
pyuwsgi, then ``python -m bench.run --upstream .venv-upstream`` starts it
under uWSGI (4 processes) on a free loopback port, with its Redis message
store on the same Redis as ours and its SQLAlchemy management store in a
temporary SQLite file, and no authentication.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.process import ProcessServer
from bench.roundtrips import RoundTripProxy

_WSGI = '''
import os
from oslo_config import cfg
from oslo_log import log
from zaqar import bootstrap
from zaqar.common import consts

conf = cfg.CONF
log.register_options(conf)
conf(project="zaqar", prog="zaqar-queues", args=[], default_config_files=[os.environ["ZAQAR_BENCH_CONF"]])
log.setup(conf, "zaqar")
boot = bootstrap.Bootstrap(conf)
conf.drivers.transport = consts.TRANSPORT_WSGI
application = boot.transport.app
'''


class UpstreamStack(ProcessServer):
    # uWSGI workers are single-threaded: a kept-alive connection would pin one
    # worker, so at concurrency above the process count requests would queue
    # behind idle connections. One connection per request keeps the comparison fair.
    keep_alive = False

    def __init__(self, venv: Path, redis_url: str, processes: int = 4, proxy: RoundTripProxy | None = None) -> None:
        redis_url = self._prepare(redis_url, proxy, "zaqar-upstream-")
        work = Path(self._dir.name)
        parts = urlsplit(redis_url)
        db = (parts.path or "/0").strip("/") or "0"
        (work / "zaqar.conf").write_text(textwrap.dedent(f"""\
            [DEFAULT]
            auth_strategy =
            pooling = False
            admin_mode = False

            [drivers]
            transport = wsgi
            message_store = redis
            management_store = sqlalchemy

            [drivers:message_store:redis]
            uri = redis://{parts.hostname}:{parts.port}?dbid={db}

            [drivers:management_store:sqlalchemy]
            uri = sqlite:///{work / 'zaqar.db'}
            """))
        (work / "wsgi.py").write_text(_WSGI)
        env = {**os.environ, "ZAQAR_BENCH_CONF": str(work / "zaqar.conf")}
        # upstream's migrations stop half-way on SQLite, after the tables the benchmark uses
        subprocess.run([str(venv / "bin" / "zaqar-sql-db-manage"), "--config-file", str(work / "zaqar.conf"),
                        "upgrade", "head"], env=env, capture_output=True, check=False)
        self.process = subprocess.Popen(
            [str(venv / "bin" / "uwsgi"), "--http-socket", f"127.0.0.1:{self.port}", "--wsgi-file",
             str(work / "wsgi.py"), "--processes", str(processes), "--master", "--die-on-term", "--disable-logging"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/")
                if conn.getresponse().status == 300:
                    return
            except OSError:
                time.sleep(0.2)
            finally:
                conn.close()
        self.stop()
        raise RuntimeError("upstream zaqar did not start")
