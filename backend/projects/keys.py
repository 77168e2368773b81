"""Project keys: the short uppercase code in task keys (OPS-42)."""

from __future__ import annotations

import re
import unicodedata

KEY_RE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
KEY_PATTERN = KEY_RE.pattern
FALLBACK = "PRJ"


def derive_key(name: str) -> str:
    """A key from a project name: initials of several words ("Platform Operations" -> "PO"),
    else the start of the one word ("Operations" -> "OPER"); "PRJ" when nothing fits."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z][A-Za-z0-9]*", ascii_name)
    if len(words) >= 2:
        key = "".join(w[0] for w in words[:6]).upper()
    elif words:
        key = words[0][:4].upper()
    else:
        key = FALLBACK
    return key if KEY_RE.fullmatch(key) else FALLBACK


def candidates(base: str, taken: set[str]) -> str:
    """``base``, or ``base2``, ``base3``, ... : the first not in ``taken`` (fits 10 chars)."""
    if base not in taken:
        return base
    for n in range(2, 100_000):
        suffix = str(n)
        key = base[: 10 - len(suffix)] + suffix
        if key not in taken:
            return key
    raise RuntimeError("no free project key")
