"""A process watching one flag, as another API process or worker would: prints ``ready``, then
``on|off <unix time>`` each time the flag's value changes in its copy. Only the pub/sub notice
can bring a change quickly: the periodic check runs every ``--check-seconds`` (an hour by
default). Exits after ``--exit-after`` seconds.

Used by tests/test_flags_processes.py and bench/flags/run.py:
``python -m bench.flags.watcher NAME``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from backend.config import get_settings
    from backend.flags import service
    from backend.flags.context import Context
    from backend.flags.store import FlagStore
    from backend.kit.db import make_engine

    parser = argparse.ArgumentParser(prog="python -m bench.flags.watcher")
    parser.add_argument("name")
    parser.add_argument("--check-seconds", type=float, default=3600.0)
    parser.add_argument("--exit-after", type=float, default=120.0)
    args = parser.parse_args(argv)
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=1)
    store = FlagStore(
        settings.redis_url, lambda: service.load(engine), check_seconds=args.check_seconds
    )
    store.start()
    print("ready", flush=True)
    last = None
    deadline = time.monotonic() + args.exit_after
    while time.monotonic() < deadline:
        now = store.is_enabled(args.name, Context())
        if now != last:
            print("on" if now else "off", repr(time.time()), flush=True)
            last = now
        time.sleep(0.002)
    print("exit", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
