"""An SMTP sink for development and tests: every message received becomes a .eml file.

``MailSink`` runs an aiosmtpd ``Controller`` (its own thread and event loop) and writes each
message to ``<directory>/<received ns>-<id>.eml``, written to a temporary name and renamed so
a reader never sees half a file. ``list_messages`` and ``read_message`` read such a directory
without a running sink (the ``tenantflow mail`` commands use them).
"""

from __future__ import annotations

import email
import email.policy
import socket
import time
import uuid
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

DEFAULT_PORT = 1025


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def list_messages(directory: str | Path) -> list[Path]:
    """The .eml files of a sink directory, oldest first."""
    path = Path(directory)
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.suffix == ".eml")


def read_message(path: str | Path) -> EmailMessage:
    with open(path, "rb") as fh:
        message = email.message_from_binary_file(fh, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


class _Handler:
    def __init__(self, directory: Path, reject: set[str]) -> None:
        self.directory = directory
        self.reject = reject

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        trace = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(trace + content)
        tmp.rename(self.directory / f"{name}.eml")
        return "250 OK: stored"


class MailSink:
    """A real SMTP server on host:port that stores what it receives in a directory.

    ``port=0`` picks a free port. ``reject`` lists recipients refused with a permanent 550.
    """

    def __init__(
        self,
        directory: str | Path,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        reject: Iterable[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self.reject = {r.lower() for r in reject}
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> MailSink:
        """Listen (raises OSError when the port is taken); idempotent."""
        if self._controller is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        controller = Controller(
            _Handler(self.directory, self.reject),
            hostname=self.host,
            port=self.port,
            decode_data=False,
            ready_timeout=5.0,
        )
        try:
            controller.start()
        except Exception as exc:
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        return [read_message(p) for p in list_messages(self.directory)]

    def wait_for(self, count: int, timeout: float = 30.0, **match: Any) -> list[EmailMessage]:
        """At least ``count`` messages whose headers equal ``match`` (``to=...``), or fewer."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages() if _matches(m, match)]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)


def _matches(message: EmailMessage, match: dict[str, Any]) -> bool:
    return all(str(message.get(k.replace("_", "-"), "")) == str(v) for k, v in match.items())
