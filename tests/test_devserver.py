"""`tenantflow dev` end to end: services, migrations, demo tenant, processes, mail sink, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from backend.devserver import DEMO_EMAIL, DEMO_SLUG
from backend.notifications.service import queue_email
from backend.notifications.sink import list_messages, read_message
from tenancy import registry


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_dev_runs_everything_and_stops_on_ctrl_c(tmp_path: Path, sync_engine):
    port = _free_port()
    database = make_url(os.environ["TENANTFLOW_DATABASE_URL"]).database
    env = {**os.environ, "TENANTFLOW_VAR_DIR": str(tmp_path)}
    env.pop("TENANTFLOW_PLATFORM_TOKEN")
    log = (tmp_path / "dev.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "dev", "--port", str(port), "--database", database],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = None
        for _ in range(150):
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, (tmp_path / "dev.log").read_text()
        password = (tmp_path / "demo-owner-password").read_text().strip()
        token = (tmp_path / "platform-token").read_text().strip()
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            headers={"X-Tenant": "demo"},
            data={"username": DEMO_EMAIL, "password": password},
        )
        assert login.status_code == 200, login.text
        demo_tenant = httpx.get(
            f"{base}/platform/v1/tenants/{DEMO_SLUG}", headers={"Authorization": f"Bearer {token}"}
        )
        assert demo_tenant.status_code == 200, demo_tenant.text
        output = (tmp_path / "dev.log").read_text()
        assert "PostgreSQL: " in output and password in output and token in output
        assert f"Mail: {tmp_path / 'mail'} (SMTP 127.0.0.1:" in output

        # Mail from the demo tenant goes through the dev worker into the dev sink.
        with sync_engine.connect() as conn:
            demo = registry.get_by_slug(conn, DEMO_SLUG)
        context = {"tenant_name": demo.name, "reset_url": f"{base}/r?t=x", "expires_minutes": 5}
        queue_email(demo, DEMO_EMAIL, "password_reset", context)
        for _ in range(300):
            if list_messages(tmp_path / "mail"):
                break
            time.sleep(0.2)
        found = list_messages(tmp_path / "mail")
        assert len(found) == 1, (tmp_path / "dev.log").read_text()[-4000:]
        [path] = found
        assert read_message(path)["To"] == DEMO_EMAIL

        busy = subprocess.run(
            [sys.executable, "-m", "backend.cli", "dev", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert busy.returncode == 2 and "in use" in busy.stderr
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(30)
        log.close()
    assert code == 0, (tmp_path / "dev.log").read_text()
    assert "stopped" in (tmp_path / "dev.log").read_text()
