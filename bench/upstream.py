"""Upstream OpenStack Zaqar run beside our stack, so both are measured in one run.

``make bench-upstream`` builds ``.venv-upstream`` with zaqar==23.0.1 and
pyuwsgi, then ``python -m bench.run --upstream .venv-upstream`` starts it
under uWSGI (4 processes) on a free loopback port, with its Redis message
store on the same Redis as ours and its SQLAlchemy management store in a
temporary SQLite file, and no authentication.

With ``notifier=True`` it runs upstream's notifier as upstream documents it:
``[storage] message_pipeline = zaqar.notification.notifier``. The notifier
lists the queue's subscriptions on every post and hands each webhook to a
thread pool (``[notification] max_notifier_workers``, 10) inside the API
process, which POSTs it with ``requests`` (a new connection each time).
pyuwsgi 2.0.30 on Python 3.11 runs an application's threads without
``--enable-threads`` (its log says "python threads support enabled" either
way), so the uWSGI command line is the same with and without the notifier.
Subscriptions live in the Redis message store. Upstream has no address
filter for subscribers: webhooks to 127.0.0.1 need nothing more.
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
    # after SIGTERM uWSGI took 3-5 s, once more than 15 s, to bury its workers (tried here): after 5 s they are killed
    stop_grace_s = 5.0

    def __init__(self, venv: Path, redis_url: str, processes: int = 4, proxy: RoundTripProxy | None = None,
                 *, notifier: bool = False) -> None:
        self.notifier = notifier
        self.processes_count = processes
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
        if notifier:
            with (work / "zaqar.conf").open("a") as conf:
                conf.write("\n[storage]\nmessage_pipeline = zaqar.notification.notifier\n")
        (work / "wsgi.py").write_text(_WSGI)
        env = {**os.environ, "ZAQAR_BENCH_CONF": str(work / "zaqar.conf")}
        # upstream's migrations stop half-way on SQLite, after the tables the benchmark uses
        subprocess.run([str(venv / "bin" / "zaqar-sql-db-manage"), "--config-file", str(work / "zaqar.conf"),
                        "upgrade", "head"], env=env, capture_output=True, check=False)
        command = [str(venv / "bin" / "uwsgi"), "--http-socket", f"127.0.0.1:{self.port}", "--wsgi-file",
                   str(work / "wsgi.py"), "--processes", str(processes), "--master", "--die-on-term",
                   "--disable-logging"]
        with (work / "uwsgi.log").open("wb") as log_file:
            self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
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
        log = (work / "uwsgi.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"upstream zaqar did not start:\n{log}")

    def describe(self) -> str:
        pipeline = "[storage] message_pipeline = zaqar.notification.notifier" if self.notifier else \
            "no message pipeline (upstream's default: notifier off)"
        return f"upstream Zaqar 23.0.1, uWSGI master + {self.processes_count} processes, {pipeline}"
