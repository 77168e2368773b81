"""Progress output of `tenantflow migrate`: a bar on a terminal, plain lines otherwise."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tenancy.migrate import TenantOutcome


class Reporter:
    def __init__(self, console: Console, interactive: bool) -> None:
        self.console = console
        self.interactive = interactive
        self.total = 0
        self.done = 0
        self.progress: Progress | None = None
        self.task: object = None

    def start(self, total: int) -> None:
        self.total = total
        if total == 0:
            self.console.print("all tenants are at the target revision")
            return
        if self.interactive:
            self.progress = Progress(
                TextColumn("migrating tenants"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task("tenants", total=total)
        else:
            self.console.print(f"migrating {total} tenant(s)")

    def result(self, outcome: TenantOutcome) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress.advance(self.task)  # type: ignore[arg-type]
            if not outcome.ok:
                self.progress.console.print(f"[red]failed[/red] {outcome.slug}: {outcome.error}")
            return
        if outcome.skipped:
            state = f"skipped: {outcome.error}"
        elif outcome.ok:
            state = f"ok {outcome.revision}"
        else:
            state = f"FAILED: {outcome.error}"
        self.console.print(
            f"[{self.done}/{self.total}] {outcome.slug} {state} ({outcome.seconds * 1000:.0f} ms)",
            highlight=False,
        )

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
