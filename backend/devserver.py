"""`tenantflow dev`: services, migrations, a demo tenant, then API + worker + beat until Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from backend import devservices
from backend.config import get_settings

DEMO_SLUG = "demo"
DEMO_EMAIL = "owner@demo.example.com"

if TYPE_CHECKING:
    from backend.notifications.sink import MailSink


def worker_argv(queues: list[str] | None, concurrency: int, name: str) -> list[str]:
    from backend.workers.celery_app import worker_queues

    queue_list = queues or worker_queues(get_settings())
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "backend.workers.celery_app",
        "worker",
        "-Q",
        ",".join(queue_list),
        "-c",
        str(concurrency),
        "--without-mingle",
        "--without-gossip",
        "-n",
        f"{name}-{os.getpid()}@%h",
        "-l",
        "INFO",
    ]


def beat_argv() -> list[str]:
    var = Path(get_settings().var_dir)
    var.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "backend.workers.celery_app",
        "beat",
        "-s",
        str(var / "celerybeat-schedule"),
        "-l",
        "INFO",
    ]


def _read_or_make(path: Path, make: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(make + "\n")
    path.chmod(0o600)
    return make


def start_mail_sink(var: Path) -> tuple[MailSink | None, str]:
    """The dev SMTP sink (var/mail) unless TENANTFLOW_SMTP_HOST names a real server.

    It listens on TENANTFLOW_SMTP_PORT (1025) or, when that is taken, a free port; the worker
    started afterwards inherits the port through the environment.
    """
    from backend.notifications.sink import MailSink

    settings = get_settings()
    if "smtp_host" in settings.model_fields_set:
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        return None, f"Mail: SMTP {where} (TENANTFLOW_SMTP_HOST is set; no sink started)"
    directory = var / "mail"
    try:
        sink = MailSink(directory, port=settings.smtp_port).start()
    except OSError:
        sink = MailSink(directory, port=0).start()
    os.environ.update(TENANTFLOW_SMTP_HOST=sink.host, TENANTFLOW_SMTP_PORT=str(sink.port))
    get_settings.cache_clear()
    return sink, f"Mail: {directory} (SMTP {sink.host}:{sink.port})"


def run_dev(host: str, port: int, out: Console, err: Console, database: str = "tenantflow") -> int:
    settings = get_settings()
    var = Path(settings.var_dir)
    if devservices.port_in_use(host, port):
        err.print(
            f"[red]error:[/red] port {port} on {host} is in use; stop what runs there or "
            f"use `tenantflow dev --port N`"
        )
        return 2
    try:
        found = devservices.ensure(var, database=database)
    except devservices.ServiceError as exc:
        err.print(f"[red]error:[/red] {exc}")
        return 1
    for note in found.notes:
        out.print(note)
    token = os.environ.get("TENANTFLOW_PLATFORM_TOKEN") or _read_or_make(
        var / "platform-token", secrets.token_urlsafe(32)
    )
    os.environ.update(
        TENANTFLOW_DATABASE_URL=found.database_url,
        TENANTFLOW_REDIS_URL=found.redis_url,
        TENANTFLOW_PLATFORM_TOKEN=token,
    )
    get_settings.cache_clear()

    from backend.kit.db import make_engine
    from backend.migrate_progress import Reporter
    from tenancy import migrate, registry

    engine = make_engine(found.database_url)
    reporter = Reporter(out, sys.stdout.isatty())
    import redis as redis_sync

    report = migrate.migrate_all(
        engine,
        jobs=2,
        on_start=reporter.start,
        on_result=reporter.result,
        redis=redis_sync.Redis.from_url(found.redis_url),
    )
    reporter.stop()
    if not report.ok:
        err.print(
            f"[red]error:[/red] {len(report.failed)} tenant(s) failed to migrate; "
            "run `tenantflow migrate` for details"
        )
        return 1
    password = _read_or_make(var / "demo-owner-password", secrets.token_urlsafe(12))
    with engine.connect() as conn:
        demo = registry.get_by_slug(conn, DEMO_SLUG)
    if demo is None:
        import redis

        from backend.platform import service

        service.create_tenant(
            engine,
            redis.Redis.from_url(found.redis_url),
            slug=DEMO_SLUG,
            name="Demo Company",
            plan="pro",
            owner_email=DEMO_EMAIL,
            owner_password=password,
        )
        out.print("created demo tenant 'demo'")
    engine.dispose()

    base = f"http://{host}:{port}"
    if "public_url" not in settings.model_fields_set:
        os.environ["TENANTFLOW_PUBLIC_URL"] = base
        get_settings.cache_clear()
    sink, mail_line = start_mail_sink(var)
    out.print(mail_line, highlight=False)
    out.print(
        f"""
[bold]Tenantflow is starting[/bold]
  API           {base}   (OpenAPI UI: {base}/docs)
  platform API  Authorization: Bearer {token}
  demo tenant   X-Tenant: demo   owner: {DEMO_EMAIL} / {password}
  log in        curl -s -H 'X-Tenant: demo' {base}/api/v1/auth/login \\
                  -d 'username={DEMO_EMAIL}' -d 'password={password}'
  mail          tenantflow mail list / tenantflow mail show N
Ctrl-C stops everything.
""",
        highlight=False,
    )
    try:
        return _supervise(_dev_commands(host, port), out)
    finally:
        if sink is not None:
            sink.stop()


def _dev_commands(host: str, port: int) -> dict[str, list[str]]:
    return {
        "api": [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "backend.main:create_app",
            "--host",
            host,
            "--port",
            str(port),
        ],
        "worker": worker_argv(None, 2, "dev"),
        "beat": beat_argv(),
        "relay": [sys.executable, "-m", "backend.cli", "relay"],
    }


def _supervise(commands: dict[str, list[str]], out: Console) -> int:
    procs = {name: subprocess.Popen(argv) for name, argv in commands.items()}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    out.print(f"[red]{name} exited with {proc.returncode}; stopping[/red]")
                    code = proc.returncode or 1
                    stopping = True
                    break
            time.sleep(0.3)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
    out.print("stopped")
    return code
