"""Ports and processes of the local stack: every port checked before anything starts, every child
stopped on every way out.

- :func:`listen` binds a loopback port for the stack (which hands the
  socket to the child that serves it, so nothing can take the port in
  between) and :func:`probe` checks one a child binds itself (the embedded
  Redis); a port in use is a :class:`PortTaken`, whose message is the one
  line the stack prints, naming the variable to change.
- :func:`child_setup` is what each child runs first: it dies with the stack
  (``PR_SET_PDEATHSIG``, so even ``kill -9`` of the stack leaves nothing
  behind), leaves the terminal's process group (Ctrl-C reaches the stack,
  which stops its children in order) and takes a name that ``ps -o comm``
  and ``/proc/PID/comm`` show (``zaqar-rest``, ``zaqar-ws``, ...).
- :class:`Workers` keeps forked workers running: one that dies, however
  (``kill -9``, a crash), is replaced; one that keeps dying right after its
  start ends the stack instead of being restarted forever.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
QUICK_DEATH_S = 10.0
"""A worker that dies sooner than this after its start counts as failing to start."""
MAX_QUICK_DEATHS = 5


class PortTaken(Exception):
    """A port the stack needs is in use (or cannot be had): str() is the one line to print."""

    def __init__(self, variable: str, port: int, what: str, reason: str, hint: str = "") -> None:
        self.variable, self.port = variable, port
        advice = hint or f"set {variable} to a free port"
        super().__init__(f"port {port} ({variable}, {what}) on {HOST} {reason}: {advice}")


def _bind(sock: socket.socket, variable: str, port: int, what: str, hint: str) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no reason to fail
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        raise PortTaken(variable, port, what, reason, hint) from None


def listen(variable: str, port: int, what: str, backlog: int = 1024, hint: str = "") -> socket.socket:
    """A listening socket on HOST:port, or PortTaken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _bind(sock, variable, port, what, hint)
    sock.listen(backlog)
    return sock


def probe(variable: str, port: int, what: str, hint: str = "") -> None:
    """PortTaken unless port can be bound on HOST right now (for a child that binds it itself)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    _bind(sock, variable, port, what, hint)
    sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_of(env: Mapping[str, str], variable: str, default: int) -> int:
    raw = env.get(variable)
    if not raw:
        return default
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{variable} must be a port number (1-65535), not {raw!r}")
    return int(raw)


def count_of(env: Mapping[str, str], variable: str, default: int) -> int:
    """A positive whole number from env (default when unset); ValueError names the variable."""
    raw = env.get(variable)
    if not raw:
        return default
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError(f"{variable} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


# -- children ----------------------------------------------------------------------------------


def _prctl(option: int, value: int | bytes) -> None:
    with contextlib.suppress(Exception):  # not Linux: the stack still stops its children itself
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)


def child_setup(name: str, parent: int) -> None:
    """What a child of the stack does first (after fork, or before exec in a subprocess)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the stack died before the line above took effect
        os._exit(1)
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    _prctl(_PR_SET_NAME, name.encode()[:15])


def preexec(name: str) -> Callable[[], None]:
    """child_setup for subprocess.Popen(preexec_fn=...)."""
    parent = os.getpid()
    return lambda: child_setup(name, parent)


def describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            return f"was killed by {signal.Signals(number).name}"
        except ValueError:
            return f"was killed by signal {number}"
    return f"exited with {os.waitstatus_to_exitcode(status)}"


def stop_pids(pids: Iterable[int], timeout_s: float = 10.0) -> None:
    """SIGTERM each process, reap it, SIGKILL what is still there after timeout_s."""
    waiting = set(pids)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while waiting:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                waiting.discard(pid)
        if not waiting:
            return
        if time.monotonic() > deadline:
            for pid in waiting:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in waiting:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            return
        time.sleep(0.05)


@dataclass
class Worker:
    kind: str
    """What it is, for messages: "REST worker", "websocket/delivery process"."""
    comm: str
    """Its process name (/proc/PID/comm, at most 15 characters): "zaqar-rest", "zaqar-ws"."""
    run: Callable[[], None]
    """What the forked child runs (it must not return: os._exit)."""
    pid: int = 0
    started: float = 0.0
    quick_deaths: int = 0


@dataclass
class Workers:
    """Forked workers, each replaced when it dies."""

    workers: list[Worker] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def add(self, kind: str, comm: str, run: Callable[[], None]) -> Worker:
        worker = Worker(kind, comm, run)
        self.workers.append(worker)
        self.start(worker)
        return worker

    def start(self, worker: Worker) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            try:
                child_setup(worker.comm, parent)
                worker.run()
            except BaseException:
                log.exception("%s %d failed", worker.kind, os.getpid())
                os._exit(1)
            os._exit(0)
        worker.pid, worker.started = pid, self.clock()

    def find(self, pid: int) -> Worker | None:
        return next((w for w in self.workers if w.pid == pid), None)

    def replace(self, worker: Worker, status: int) -> bool:
        """Start another in the place of a worker that ended with status; False if it keeps failing at start."""
        lived = self.clock() - worker.started
        worker.quick_deaths = worker.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if worker.quick_deaths >= MAX_QUICK_DEATHS:
            log.error("%s %d %s %.1f s after its start, %d times in a row: not starting it again", worker.kind,
                      worker.pid, describe_status(status), lived, worker.quick_deaths)
            worker.pid = 0
            return False
        log.warning("%s %d %s; starting another", worker.kind, worker.pid, describe_status(status))
        if worker.quick_deaths:
            time.sleep(min(0.25 * 2 ** worker.quick_deaths, 5.0))
        self.start(worker)
        return True

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid]

    def stop(self, timeout_s: float = 10.0) -> None:
        stop_pids(self.pids(), timeout_s)
        for worker in self.workers:
            worker.pid = 0
