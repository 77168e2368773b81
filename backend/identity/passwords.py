"""Password hashing: the parameters, and a bounded pool of threads that runs the hashes.

An argon2 hash costs ~20 ms of CPU and 19 MiB of memory. It runs off the event loop (in the
loop it would stall every request of the process), in a pool of one thread per core: more
threads than cores add no throughput, only memory (anyio's default pool would run up to 40
hashes at once, 760 MiB) and the loss of every hash's latency to time slicing. Beyond that,
hashes queue.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi_users.password import PasswordHelper
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

T = TypeVar("T")

# OWASP password-storage cheat sheet: argon2id with m=19 MiB, t=2, p=1. A stronger setting
# costs every login and tenant creation proportionally (64 MiB/t=3 measured ~220 ms here).
# Legacy hashes still verify and are replaced on the next good login (verify_and_update):
# bcrypt (imported accounts) and argon2 at other parameters (raising these later is safe).
password_helper = PasswordHelper(
    PasswordHash(
        (Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1), BcryptHasher(rounds=12))
    )
)

_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """This process's pool (made on first use: a pool inherited through fork has no threads)."""
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        _pool = (
            os.getpid(),
            ThreadPoolExecutor(
                max_workers=workers or os.cpu_count() or 1, thread_name_prefix="password-hash"
            ),
        )
    return _pool[1]


def submit(work: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``work`` (a hash) in the pool; submitted at once, not when first awaited."""
    return asyncio.get_running_loop().run_in_executor(_executor(), work)


async def hash_password(password: str) -> str:
    return await submit(lambda: password_helper.hash(password))


async def verify_and_update(password: str, stored: str) -> tuple[bool, str | None]:
    """(whether ``password`` matches ``stored``, a new hash when ``stored`` is outdated)."""
    return await submit(lambda: password_helper.verify_and_update(password, stored))
