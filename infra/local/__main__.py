"""The local stack: ``python -m infra.local`` (what ``make run`` starts).

REST on 127.0.0.1:$PORT (8888) in front of the same Chalice app Lambda
runs, websockets on $WS_PORT (9000), the embedded AWS (moto) on $MOTO_PORT
(9100); an embedded Redis under $DATA_DIR unless $POOL_URL names one (on
the port it had the first time, kept in $DATA_DIR/redis/port, or
$REDIS_PORT); a SQLite catalog under $DATA_DIR unless $CATALOG_URL names
another database. The ``local`` stage of ``.chalice/config.json`` supplies
the environment variables that are not set.

This process binds every port first (a port in use is one line naming the
variable to change, exit status 1, nothing started), then starts the
embedded Redis and moto, forks $WORKERS REST workers (waitress, see
infra/local/http.py) and the websocket/delivery process, and supervises
them: a worker that dies is replaced; if the embedded Redis or moto dies,
or on SIGTERM, SIGINT (Ctrl-C) or SIGHUP, every child is stopped and the
stack exits. Its children die with it even when it is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import secrets
import select
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from infra.local import logs
from infra.local.processes import HOST, PortTaken, Workers, count_of, describe_status, listen, port_of, preexec, probe

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from infra.local.embedded_redis import EmbeddedRedis
    from infra.local.http import Limits

log = logging.getLogger("infra.local")
ROOT = Path(__file__).resolve().parents[2]
STAGE = "local"
EXIT_ERROR = 1
_FD_TARGET = 65536


class StackError(Exception):
    """Why the stack cannot start or go on, in one line."""


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# -- configuration ---------------------------------------------------------------------------------


def stage_environment(root: Path = ROOT, stage: str = STAGE) -> dict[str, str]:
    """The environment_variables of .chalice/config.json for stage: the file's, then the stage's."""
    path = root / ".chalice" / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(f"{path} cannot be read: {exc}") from None
    merged: dict[str, str] = {}
    for layer in (config, (config.get("stages") or {}).get(stage) or {}):
        for name, value in (layer.get("environment_variables") or {}).items():
            merged[str(name)] = str(value)
    if merged.get("DATA_DIR") and not Path(merged["DATA_DIR"]).is_absolute():
        merged["DATA_DIR"] = str(root / merged["DATA_DIR"])
    return merged


def apply_stage(env: os._Environ[str] | dict[str, str], root: Path = ROOT) -> None:
    """What the local stage sets, where the environment does not set it already (the user's wins)."""
    for name, value in stage_environment(root).items():
        if not env.get(name):
            env[name] = value


def _secret(data_dir: Path, name: str) -> str:
    """A key kept under DATA_DIR, made on first start, so restarts keep working data."""
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _raise_fd_limit() -> None:
    """Up to the hard limit (at most 65536): each REST worker bounds its connections by what it has."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _FD_TARGET if hard == resource.RLIM_INFINITY else min(hard, _FD_TARGET)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _stable_port() -> int:
    """A free loopback port below the range the kernel hands out to outgoing connections, so that no
    client takes it while the stack is stopped."""
    from infra.local.embedded_redis import free_port

    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    try:
        return free_port(20000, max(low - 1, 20100))
    except RuntimeError:
        raise StackError("no free port for the embedded Redis: set REDIS_PORT to a free port") from None


@dataclass(frozen=True)
class RedisPort:
    port: int
    file: Path
    stored: bool
    """Whether the port came from the file (the port of an earlier start), not from REDIS_PORT or new."""

    def check(self) -> None:
        if self.stored:
            hint = (f"the embedded Redis has used it since its first start (kept in {self.file}): stop what uses "
                    "it, or set REDIS_PORT to a free port (pools registered with the old URL then need updating), "
                    "or POOL_URL to a Redis of your own")
        else:
            hint = "set REDIS_PORT to a free port, or POOL_URL to a Redis of your own"
        probe("REDIS_PORT", self.port, "the embedded Redis", hint=hint)

    def keep(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(f"{self.port}\n")


def _redis_port(env: os._Environ[str] | dict[str, str], data_dir: Path) -> RedisPort:
    file = data_dir / "redis" / "port"
    if env.get("REDIS_PORT"):
        return RedisPort(port_of(env, "REDIS_PORT", 0), file, stored=False)
    with contextlib.suppress(OSError, ValueError):
        stored = int(file.read_text().strip())
        if 0 < stored < 65536:
            return RedisPort(stored, file, stored=True)
    return RedisPort(_stable_port(), file, stored=False)


# -- children --------------------------------------------------------------------------------------


def _start_aws(env: os._Environ[str] | dict[str, str], sock: socket.socket, wake: socket.socket) -> subprocess.Popen[bytes]:
    """Embedded AWS (moto, adjusted: see infra/local/aws.py) for Kinesis, SQS and SES on the socket bound to
    MOTO_PORT; every AWS client points at it. It gets one end of the wake-up channel to the delivery loop."""
    port = int(sock.getsockname()[1])
    ready_r, ready_w = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.local.aws", "--fd", str(sock.fileno()), "--wake-fd", str(wake.fileno()),
             "--ready-fd", str(ready_w)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(sock.fileno(), wake.fileno(), ready_w),
            preexec_fn=preexec("zaqar-aws"),
        )
        os.close(ready_w)
        ready_w = -1
        readable, _, _ = select.select([ready_r], [], [], 60)
        answer = os.read(ready_r, 1) if readable else b""
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    if answer != b"1":
        process.kill()
        process.wait()
        raise StackError(f"the embedded AWS (python -m infra.local.aws) did not start (exit status {process.returncode})")
    env.update({
        "AWS_ENDPOINT_URL": f"http://{HOST}:{port}",
        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
    })
    env.setdefault("EVENT_STREAM", "zaqar-events")
    env.setdefault("RETRY_QUEUE", "zaqar-retries")
    env.setdefault("SES_SENDER", "noreply@zaqar.local")
    return process


def _provision(settings: Settings) -> None:
    import boto3

    from infra.local.pumps import provision

    assert settings.event_stream and settings.retry_queue and settings.ses_sender
    clients = [boto3.client("kinesis"), boto3.client("sqs"), boto3.client("ses")]
    try:
        provision(*clients, stream=settings.event_stream, queue=settings.retry_queue, sender=settings.ses_sender)
    finally:
        for client in clients:  # the workers are forked next: leave them no connection of ours
            client.close()


def _exit_on(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _rest_worker(sock: socket.socket, others: list[socket.socket], limits: Limits, access_log: bool) -> None:
    """A REST worker: the gateway (Gateway.respond) under waitress (infra.local.http) on the shared socket."""
    for other in others:
        other.close()
    signal.signal(signal.SIGTERM, _exit_on)  # until serve() has a server to stop after its request in progress
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    logs.configure()
    from app import app
    from infra.local.gateway import Gateway
    from infra.local.http import serve

    gateway = Gateway(app, app.routes, access_log=logs.AccessLog(enabled=access_log))
    with contextlib.suppress(KeyboardInterrupt):
        serve(gateway.respond, sock, limits, gateway.access_log)


def _websocket_worker(port: int, sock: socket.socket, wake: socket.socket, others: list[socket.socket]) -> None:
    for other in others:
        other.close()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    logs.configure()
    from infra.local.websocket_server import main as serve_websockets

    with contextlib.suppress(KeyboardInterrupt):
        serve_websockets(port, wake, sock=sock)


@dataclass
class Stack:
    """Everything the stack started, so that every way out stops all of it."""

    workers: Workers = field(default_factory=Workers)
    moto: subprocess.Popen[bytes] | None = None
    redis: EmbeddedRedis | None = None
    sockets: list[socket.socket] = field(default_factory=list)

    def stop(self) -> None:
        self.workers.stop()
        if self.moto is not None:
            with contextlib.suppress(ProcessLookupError):
                self.moto.terminate()
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
            self.moto = None
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()

    def supervise(self) -> int:
        """Replace workers that die; stop (status 1) when the embedded Redis or AWS dies."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                log.error("no process of the stack is left")
                return EXIT_ERROR
            worker = self.workers.find(pid)
            if worker is not None:
                if not self.workers.replace(worker, status):
                    log.error("stopping the stack: the %s cannot start", worker.kind)
                    return EXIT_ERROR
            elif self.redis is not None and pid == self.redis.pid:
                log.error("the embedded Redis (pid %d) %s: stopping the stack", pid, describe_status(status))
                return EXIT_ERROR
            elif self.moto is not None and pid == self.moto.pid:
                self.moto.returncode = os.waitstatus_to_exitcode(status)
                log.error("the embedded AWS (moto, pid %d) %s: stopping the stack", pid, describe_status(status))
                return EXIT_ERROR


def _stop_on(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _quietly(signum: int, frame: FrameType | None) -> None:
    log.warning("%s: already stopping", signal.Signals(signum).name)


def run(env: os._Environ[str] | dict[str, str]) -> int:
    apply_stage(env)
    logs.configure()
    data_dir = Path(env.get("DATA_DIR") or "./.local").resolve()
    try:
        port = port_of(env, "PORT", 8888)
        ws_port = port_of(env, "WS_PORT", 9000)
        moto_port = port_of(env, "MOTO_PORT", 9100)
        workers = count_of(env, "WORKERS", os.cpu_count() or 2)
        from infra.local.http import Limits

        limits = Limits.from_environment(env)
    except ValueError as exc:
        raise StackError(str(exc)) from None
    named = {"PORT": port, "WS_PORT": ws_port, "MOTO_PORT": moto_port}
    if len(set(named.values())) < len(named):
        raise StackError(f"PORT, WS_PORT and MOTO_PORT must differ: {named}")
    data_dir.mkdir(parents=True, exist_ok=True)
    env["DATA_DIR"] = str(data_dir)
    _raise_fd_limit()

    stack = Stack()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    try:
        try:
            redis_port = None
            if not env.get("POOL_URL"):
                redis_port = _redis_port(env, data_dir)
                if redis_port.port in named.values():
                    raise StackError(f"REDIS_PORT {redis_port.port} is also one of {named}: set REDIS_PORT to another")
                redis_port.check()
            rest = listen("PORT", port, "the REST API")
            stack.sockets.append(rest)
            ws = listen("WS_PORT", ws_port, "the websocket API")
            stack.sockets.append(ws)
            moto_sock = listen("MOTO_PORT", moto_port, "the embedded AWS (moto)")
            stack.sockets.append(moto_sock)
        except PortTaken as exc:
            raise StackError(str(exc)) from None

        if redis_port is not None:
            from infra.local.embedded_redis import EmbeddedRedis

            try:
                stack.redis = EmbeddedRedis(data_dir / "redis", port=redis_port.port, preexec_fn=preexec("zaqar-redis"))
            except RuntimeError as exc:
                raise StackError(f"the embedded Redis did not start on port {redis_port.port} (REDIS_PORT): {exc}") from None
            redis_port.keep()
            env["POOL_URL"] = stack.redis.url
        env.setdefault("MESSAGE_ENCRYPTION_KEY", _secret(data_dir, "encryption.key"))
        env.setdefault("SIGNING_KEY", _secret(data_dir, "signing.key"))
        env.setdefault("WEBHOOK_ALLOW_LOOPBACK", "true")  # so people can test webhooks on their own machine
        env.setdefault("REQUEST_LOG", "false")  # a terminal, not CloudWatch: the access log below instead
        env.setdefault("PUBLIC_URL", f"http://{HOST}:{port}")
        env.setdefault("WEBSOCKET_API_ID", "local")
        env.setdefault("WEBSOCKET_STAGE", "local")
        access_log = (env.get("ACCESS_LOG") or "true").strip().lower() not in {"0", "false", "no", "off"}
        from infra.local import wake

        aws_end, loop_end = wake.pair()  # the local AWS wakes the delivery loop (see infra/local/wake.py)
        stack.sockets.append(loop_end)  # kept here too: a replaced websocket/delivery process takes it over
        try:
            stack.moto = _start_aws(env, moto_sock, aws_end)
        finally:
            aws_end.close()
            stack.sockets.remove(moto_sock)
            moto_sock.close()  # moto's now

        from chalicelib.config import ConfigError, get_settings
        from chalicelib.errors import ServiceError
        from chalicelib.runtime import build

        try:
            settings = get_settings()
            build(settings).pooling.close()  # migrate the catalog and register the default pool once
        except (ConfigError, ServiceError) as exc:
            raise StackError(str(exc)) from None
        _provision(settings)

        for _ in range(workers):
            stack.workers.add("REST worker", "zaqar-rest", lambda: _rest_worker(rest, [ws, loop_end], limits, access_log))
        stack.workers.add("websocket/delivery process", "zaqar-ws",
                          lambda: _websocket_worker(ws_port, ws, loop_end, [rest]))
        print(f"Zaqar REST API on http://{HOST}:{port}/v2 ({workers} workers)", flush=True)
        print(f"Zaqar websocket API on ws://{HOST}:{ws_port}/", flush=True)
        print(f"  pool {settings.pool_url}, catalog {settings.catalog_url}, data in {data_dir}", flush=True)
        if not access_log:
            print("  one line per request: ACCESS_LOG=true", flush=True)
        return stack.supervise()
    except _Stop as stop:
        log.info("%s: stopping", stop)
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _quietly)  # a second Ctrl-C must not cut the stopping short
        stack.stop()


def main() -> int:
    try:
        return run(os.environ)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_ERROR
    except _Stop:  # a second signal while the first was being handled
        return 0


if __name__ == "__main__":
    sys.exit(main())
