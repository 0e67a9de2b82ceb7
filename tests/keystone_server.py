"""A real Keystone for the tests: the PyPI package in its own virtualenv
(``.venv-keystone``, made by ``make test``), a SQLite database and fernet
keys in a folder of the test run's own, served by gunicorn on loopback.

Two projects with a member each (alice in alpha, bob in beta), the
bootstrap admin, and the service user zaqar (role ``service``) that the
keystone auth strategy validates tokens with. Tokens live 20 seconds, so
expiry can be tested without waiting long; ``start(..., token_seconds=...)``
gives another Keystone a normal lifetime (the conformance suites reuse a
token for a whole test class).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-keystone"
PASSWORD = "secret-for-tests"
TOKEN_SECONDS = 20
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Keystone:
    url: str
    process: subprocess.Popen[bytes]
    projects: dict[str, str]

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["X-Auth-Token"] = token
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)
        try:
            with _OPENER.open(request, timeout=10) as response:
                raw = response.read()
                return response.status, dict(response.headers.items()), json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            exc.close()
            return exc.code, dict(exc.headers.items()), json.loads(raw) if raw else None

    def token(self, user: str, project: str) -> str:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": PASSWORD, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        status, headers, _ = self.call("POST", "/v3/auth/tokens", body)
        assert status == 201, status
        return headers["X-Subject-Token"]

    def revoke(self, token: str) -> None:
        admin = self.token("admin", "admin")
        status, _, _ = self.call("DELETE", "/v3/auth/tokens", token=admin, headers={"X-Subject-Token": token})
        assert status == 204, status

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def available() -> bool:
    return (VENV / "bin" / "keystone-manage").exists() and (VENV / "bin" / "gunicorn").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(folder: Path, *, token_seconds: int = TOKEN_SECONDS) -> Keystone:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    conf = folder / "keystone.conf"
    conf.write_text(
        f"[database]\nconnection = sqlite:///{folder / 'keystone.db'}\n"
        f"[token]\nprovider = fernet\nexpiration = {token_seconds}\n"
        f"[fernet_tokens]\nkey_repository = {folder / 'fernet-keys'}\n"
        f"[fernet_receipts]\nkey_repository = {folder / 'fernet-receipts'}\n"
        f"[credential]\nkey_repository = {folder / 'credential-keys'}\n"
        "[identity]\npassword_hash_rounds = 4\n"
        "[cache]\nenabled = false\n"
    )
    manage = [str(VENV / "bin" / "keystone-manage"), "--config-file", str(conf)]
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf), "HOME": str(folder)}
    for step in (["db_sync"], ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
                 ["receipt_setup", "--keystone-user", "root", "--keystone-group", "root"],
                 ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
                 ["bootstrap", "--bootstrap-password", PASSWORD, "--bootstrap-admin-url", f"{url}/v3",
                  "--bootstrap-internal-url", f"{url}/v3", "--bootstrap-public-url", f"{url}/v3",
                  "--bootstrap-region-id", "RegionOne"]):
        subprocess.run([*manage, *step], env=env, check=True, capture_output=True, timeout=120)
    (folder / "keystone_entry.py").write_text(
        "import sys\nsys.argv = sys.argv[:1]  # keystone parses the command line: hide gunicorn's\n"
        "from keystone.wsgi.api import application  # noqa: E402,F401\n"
    )
    process = subprocess.Popen(
        [str(VENV / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--no-control-socket",
         "--chdir", str(folder), "keystone_entry:application"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    keystone = Keystone(url, process, {})
    deadline = time.monotonic() + 60
    while True:
        try:
            if keystone.call("GET", "/v3")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            keystone.stop()
            raise RuntimeError("keystone did not start")
        time.sleep(0.2)
    _populate(keystone)
    return keystone


def _populate(keystone: Keystone) -> None:
    admin = keystone.token("admin", "admin")

    def create(kind: str, body: dict[str, Any]) -> str:
        status, _, reply = keystone.call("POST", f"/v3/{kind}s", {kind: body}, token=admin)
        assert status == 201, (kind, status, reply)
        return str(reply[kind]["id"])

    status, _, roles = keystone.call("GET", "/v3/roles", token=admin)
    role_ids = {r["name"]: r["id"] for r in roles["roles"]}
    if "service" not in role_ids:
        role_ids["service"] = create("role", {"name": "service"})
    for project, user, role in (("alpha", "alice", "member"), ("beta", "bob", "member"),
                                ("service", "zaqar", "service")):
        project_id = create("project", {"name": project, "domain_id": "default"})
        keystone.projects[project] = project_id
        user_id = create("user", {"name": user, "password": PASSWORD, "domain_id": "default"})
        status, _, _ = keystone.call("PUT", f"/v3/projects/{project_id}/users/{user_id}/roles/{role_ids[role]}",
                                     token=admin)
        assert status == 204, status
    status, _, reply = keystone.call("GET", "/v3/projects?name=admin", token=admin)
    keystone.projects["admin"] = reply["projects"][0]["id"]
