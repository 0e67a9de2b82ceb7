"""A real Keystone for the tests: the PyPI package in its own virtualenv
(``.venv-keystone``, made by ``make test``), a SQLite database and fernet
keys in a folder of the test run's own, served by gunicorn on loopback.

Two projects with a member each (alice in alpha, bob in beta), the
bootstrap admin, and the service user zaqar (role ``service``) that the
keystone auth strategy validates tokens with.

Tokens live an hour (``TOKEN_SECONDS``), so none expires during a fixture's
setup or a test however loaded the machine is. Expiry is tested with
:func:`start_sibling`: a second gunicorn on the same database and keys whose
tokens live ``SHORT_TOKEN_SECONDS``. A fernet token carries its own expiry,
so both servers accept the tokens of either, and a token from the sibling
expires in seconds wherever it is validated.

Every server runs in a process group of its own, stopped as a whole
(:func:`stop_group`): gunicorn's worker goes with its master, on every way
out of :func:`start` too.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-keystone"
PASSWORD = "secret-for-tests"
TOKEN_SECONDS = 3600
SHORT_TOKEN_SECONDS = 20
REQUEST_TIMEOUT_S = 60.0
"""One request to Keystone: generous, a loaded machine can be slow (the harness never relies on it being quick)."""
MANAGE_TIMEOUT_S = 600.0
"""One ``keystone-manage`` step (db_sync is the slowest: about 5 s on an idle machine)."""
READY_TIMEOUT_S = 300.0
"""gunicorn's worker importing Keystone: a few seconds on an idle machine, a minute or more on a busy one."""
STOP_TIMEOUT_S = 15.0
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def stop_group(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT_S) -> None:
    """Stops the process group that ``process`` leads (it was started with ``start_new_session=True``, so the
    group's id is its pid): SIGTERM, then, after ``timeout`` seconds or on an interruption while waiting,
    SIGKILL to whatever of the group is left. Reaps ``process``; safe to call again."""
    group = process.pid
    if group == os.getpgrp():
        raise ValueError("not a process group of its own: start it with start_new_session=True")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # a child still stopping, or a leader that ignored SIGTERM
        process.wait()


def _expiry(text: str) -> float:
    """Keystone's ``expires_at`` (``2030-01-01T00:00:00.000000Z``) as Unix time."""
    return datetime.datetime.fromisoformat(text).timestamp()


@dataclass
class Keystone:
    url: str
    process: subprocess.Popen[bytes]
    projects: dict[str, str]
    token_seconds: int = TOKEN_SECONDS
    folder: Path | None = None
    _admin: tuple[str, float] | None = field(default=None, repr=False)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["X-Auth-Token"] = token
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with _OPENER.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                raw = response.read()
                return response.status, dict(response.headers.items()), json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            exc.close()
            return exc.code, dict(exc.headers.items()), json.loads(raw) if raw else None

    def issue(self, user: str, project: str) -> tuple[str, float]:
        """A new project-scoped token for ``user`` and the Unix time it expires at."""
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": PASSWORD, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        status, headers, reply = self.call("POST", "/v3/auth/tokens", body)
        assert status == 201, (status, reply)
        return headers["X-Subject-Token"], _expiry(reply["token"]["expires_at"])

    def token(self, user: str, project: str) -> str:
        return self.issue(user, project)[0]

    def admin_token(self) -> str:
        """The bootstrap admin's token, reused while more than half of its life is left."""
        if self._admin is None or self._admin[1] - time.time() < self.token_seconds / 2:
            self._admin = self.issue("admin", "admin")
        return self._admin[0]

    def admin_call(self, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """``call`` as the admin; once more with a new admin token if Keystone no longer takes the one it had."""
        reply = self.call(method, path, body, token=self.admin_token(), headers=headers)
        if reply[0] == 401:
            self._admin = None
            reply = self.call(method, path, body, token=self.admin_token(), headers=headers)
        return reply

    def revoke(self, token: str) -> None:
        status, _, _ = self.admin_call("DELETE", "/v3/auth/tokens", headers={"X-Subject-Token": token})
        assert status == 204, status

    def stop(self) -> None:
        stop_group(self.process)


def available() -> bool:
    return (VENV / "bin" / "keystone-manage").exists() and (VENV / "bin" / "gunicorn").exists()


def _listen() -> socket.socket:
    """A listening loopback socket that gunicorn is handed (``fd://``): no other process can take its port."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _write_conf(folder: Path, token_seconds: int) -> Path:
    conf = folder / f"keystone-{token_seconds}s.conf"
    conf.write_text(
        f"[database]\nconnection = sqlite:///{folder / 'keystone.db'}\n"
        f"[token]\nprovider = fernet\nexpiration = {token_seconds}\n"
        f"[fernet_tokens]\nkey_repository = {folder / 'fernet-keys'}\n"
        f"[fernet_receipts]\nkey_repository = {folder / 'fernet-receipts'}\n"
        f"[credential]\nkey_repository = {folder / 'credential-keys'}\n"
        "[identity]\npassword_hash_rounds = 4\n"
        "[cache]\nenabled = false\n"
    )
    return conf


def _env(folder: Path, conf: Path) -> dict[str, str]:
    return {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf), "HOME": str(folder)}


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _serve(folder: Path, conf: Path, sock: socket.socket, token_seconds: int) -> Keystone:
    """gunicorn on ``sock`` (closed here), in a process group of its own; returns once Keystone answers, and
    leaves nothing running when it does not (or when interrupted)."""
    port = int(sock.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    log_path = folder / f"gunicorn-{port}.log"
    entry = folder / "keystone_entry.py"
    if not entry.exists():
        entry.write_text(
            "import sys\nsys.argv = sys.argv[:1]  # keystone parses the command line: hide gunicorn's\n"
            "from keystone.wsgi.api import application  # noqa: E402,F401\n"
        )
    try:
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(VENV / "bin" / "gunicorn"), "--bind", f"fd://{sock.fileno()}", "--workers", "1",
                 # no heartbeat deadline: a worker slow to import Keystone on a busy machine is not killed
                 "--timeout", "0", "--graceful-timeout", "5", "--no-control-socket",
                 "--chdir", str(folder), "keystone_entry:application"],
                env=_env(folder, conf), stdout=log, stderr=subprocess.STDOUT, pass_fds=(sock.fileno(),),
                start_new_session=True,
            )
    finally:
        sock.close()  # gunicorn has its own copy
    keystone = Keystone(url, process, {}, token_seconds=token_seconds, folder=folder)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError):
                if keystone.call("GET", "/v3")[0] == 200:
                    return keystone
            if process.poll() is not None:
                raise RuntimeError(f"keystone exited with {process.returncode}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"keystone did not answer in {READY_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}")
            time.sleep(0.2)
    except BaseException:
        keystone.stop()
        raise


def start(folder: Path, *, token_seconds: int = TOKEN_SECONDS) -> Keystone:
    """A Keystone with the users and projects above, whose tokens live ``token_seconds``."""
    sock = _listen()
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        conf = _write_conf(folder, token_seconds)
        manage = [str(VENV / "bin" / "keystone-manage"), "--config-file", str(conf)]
        for step in (["db_sync"], ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
                     ["receipt_setup", "--keystone-user", "root", "--keystone-group", "root"],
                     ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
                     ["bootstrap", "--bootstrap-password", PASSWORD, "--bootstrap-admin-url", f"{url}/v3",
                      "--bootstrap-internal-url", f"{url}/v3", "--bootstrap-public-url", f"{url}/v3",
                      "--bootstrap-region-id", "RegionOne"]):
            subprocess.run([*manage, *step], env=_env(folder, conf), check=True, capture_output=True,
                           timeout=MANAGE_TIMEOUT_S)
    except BaseException:
        sock.close()
        raise
    keystone = _serve(folder, conf, sock, token_seconds)
    try:
        _populate(keystone)
    except BaseException:
        keystone.stop()
        raise
    return keystone


def start_sibling(keystone: Keystone, *, token_seconds: int = SHORT_TOKEN_SECONDS) -> Keystone:
    """A second server of ``keystone``'s database and keys (same users, projects, catalog, revocations) whose
    tokens live ``token_seconds``. Its catalog names ``keystone``'s URL."""
    assert keystone.folder is not None, "a sibling needs the folder of a Keystone made by start()"
    conf = _write_conf(keystone.folder, token_seconds)
    sibling = _serve(keystone.folder, conf, _listen(), token_seconds)
    sibling.projects = dict(keystone.projects)
    return sibling


def _populate(keystone: Keystone) -> None:
    def create(kind: str, body: dict[str, Any]) -> str:
        status, _, reply = keystone.admin_call("POST", f"/v3/{kind}s", {kind: body})
        assert status == 201, (kind, status, reply)
        return str(reply[kind]["id"])

    status, _, roles = keystone.admin_call("GET", "/v3/roles")
    assert status == 200, (status, roles)
    role_ids = {r["name"]: r["id"] for r in roles["roles"]}
    if "service" not in role_ids:
        role_ids["service"] = create("role", {"name": "service"})
    for project, user, role in (("alpha", "alice", "member"), ("beta", "bob", "member"),
                                ("service", "zaqar", "service")):
        project_id = create("project", {"name": project, "domain_id": "default"})
        keystone.projects[project] = project_id
        user_id = create("user", {"name": user, "password": PASSWORD, "domain_id": "default"})
        status, _, _ = keystone.admin_call("PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/{role_ids[role]}")
        assert status == 204, status
    status, _, reply = keystone.admin_call("GET", "/v3/projects?name=admin")
    assert status == 200, (status, reply)
    keystone.projects["admin"] = reply["projects"][0]["id"]
