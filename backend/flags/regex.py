"""REGEX constraint patterns: RE2 syntax (as Unleash's Rust engine reads it) run on `re`.

Python's `re` differs from RE2 where it matters for flags written once and evaluated by many
SDKs: `(?i)` in mid-pattern (an error in Python 3.11, scoped to the enclosing group in RE2),
`$` (RE2 matches only at the very end unless multi-line), POSIX classes `[[:alpha:]]`, `\\z`,
`(?<name>...)`, `\\x{...}` and `\\Q...\\E`. `translate` rewrites those and rejects what RE2
rejects (look-around, back-references, atomic groups, possessive quantifiers), so a pattern
that works here works in every Unleash SDK and vice versa. `\\d`, `\\w` and `\\b` stay
Unicode-aware, as in Rust's regex crate; Unicode classes (`\\pL`) are not supported."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_REPEAT = 1000  # RE2's limit; also bounds the size of the compiled program
_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_REJECTED_GROUPS = {
    "(?=": "look-ahead",
    "(?!": "negative look-ahead",
    "(?<=": "look-behind",
    "(?<!": "negative look-behind",
    "(?P=": "back-reference",
    "(?>": "atomic group",
    "(?#": "comment group",
    "(?(": "conditional group",
}
_FLAGS = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_PASS_ESCAPES = set("dDwWsSbBntrfva")


@dataclass
class _Group:
    flags: frozenset[str]
    #: Scoped flag groups opened by `(?flags)` in this group, closed at its `)` or a `|`.
    opened: list[str] = field(default_factory=list)
    #: Whether something inside repeats without bound (`*`, `+`, `{n,}`).
    unbounded: bool = False


def compile_pattern(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    """Compile an RE2-syntax pattern for `search`; ValueError says what is wrong."""
    translated = translate(pattern)
    try:
        return re.compile(translated, re.IGNORECASE if case_insensitive else 0)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def translate(pattern: str) -> str:
    """The Python `re` spelling of an RE2 pattern."""
    return _translate(pattern)[0]


def exponential_risk(pattern: str) -> bool:
    """Whether the pattern repeats without bound a group that itself repeats without bound,
    like `(a+)+` or `(\\w+\\s?)*`: RE2 runs those in linear time, Python's backtracking
    engine can take exponential time on a crafted context value. (Overlapping alternatives
    such as `(a|a)*` are not detected.)"""
    return _translate(pattern)[1]


def _translate(pattern: str) -> tuple[str, bool]:
    out: list[str] = []
    groups = [_Group(frozenset())]
    closed: _Group | None = None  # the group that the previous token closed, if any
    risky = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        just_closed, closed = closed, None
        if c == "\\":
            piece, i = _escape(pattern, i, in_class=False)
        elif c == "[":
            piece, i = _char_class(pattern, i)
        elif c == "(":
            piece, i = _open_group(pattern, i, groups)
        elif c == ")":
            if len(groups) == 1:
                raise ValueError(f"unbalanced ')' in regular expression {pattern!r}")
            closed = groups.pop()
            groups[-1].unbounded |= closed.unbounded
            piece, i = ")" * len(closed.opened) + ")", i + 1
        elif c == "|":
            opened = groups[-1].opened
            piece = ")" * len(opened) + "|" + "".join(f"(?{spec}:" for spec in opened)
            i += 1
        elif c == "$":
            piece, i = ("$" if "m" in groups[-1].flags else r"\Z"), i + 1
        elif c in "*+?" or (c == "{" and _REPEAT.match(pattern, i)):
            piece, i = _quantifier(pattern, i)
            if piece[0] in "*+" or piece.rstrip("?").endswith(",}"):
                risky |= just_closed is not None and just_closed.unbounded
                groups[-1].unbounded = True
        elif c == "{":
            piece, i = r"\{", i + 1  # not a repetition: a literal brace, as in RE2
        else:
            piece, i = c, i + 1
        out.append(piece)
    if len(groups) > 1:
        raise ValueError(f"missing ')' in regular expression {pattern!r}")
    out.append(")" * len(groups[0].opened))
    return "".join(out), risky


def _open_group(pattern: str, i: int, groups: list[_Group]) -> tuple[str, int]:
    current = groups[-1]
    if not pattern.startswith("(?", i):
        groups.append(_Group(current.flags))
        return "(", i + 1
    for prefix, what in _REJECTED_GROUPS.items():
        if pattern.startswith(prefix, i):
            raise ValueError(f"{what} is not supported in regular expressions (RE2 syntax)")
    if pattern.startswith("(?P<", i):
        groups.append(_Group(current.flags))
        return "(?P<", i + 4
    if pattern.startswith("(?<", i):
        groups.append(_Group(current.flags))
        return "(?P<", i + 3
    match = _FLAGS.match(pattern, i)
    if match is None:
        raise ValueError(f"unknown group syntax at position {i} in {pattern!r}")
    on, off, end = match.group(1), match.group(2) or "", match.group(3)
    if end == ":" and not on and not off:
        groups.append(_Group(current.flags))
        return "(?:", match.end()
    if (not on and not off) or set(on + off) - set("ims"):
        raise ValueError(f"unsupported flags {match.group(0)!r}: RE2 allows i, m and s")
    spec = on + (f"-{off}" if off else "")
    flags = (current.flags | set(on)) - set(off)
    if end == ":":
        groups.append(_Group(flags))
    else:  # (?flags) lasts to the end of the enclosing group: scope it explicitly
        current.flags = flags
        current.opened.append(spec)
    return f"(?{spec}:", match.end()


def _quantifier(pattern: str, i: int) -> tuple[str, int]:
    match = _REPEAT.match(pattern, i)
    if match is not None:
        low, high = int(match.group(1)), match.group(3)
        if low > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
            raise ValueError(f"repetition over {MAX_REPEAT} in {pattern!r}")
        if high and int(high) < low:
            raise ValueError(f"bad repetition {match.group(0)!r} in {pattern!r}")
        piece, i = match.group(0), match.end()
    else:
        piece, i = pattern[i], i + 1
    if i < len(pattern) and pattern[i] == "?":
        piece, i = piece + "?", i + 1
    if i < len(pattern) and pattern[i] == "+":
        raise ValueError(f"possessive quantifiers are not supported (RE2 syntax): {pattern!r}")
    return piece, i


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    if i + 1 >= len(pattern):
        raise ValueError(f"trailing backslash in regular expression {pattern!r}")
    c = pattern[i + 1]
    if c in _PASS_ESCAPES or (not c.isalnum() and c != "_"):
        return "\\" + c, i + 2
    if c == "x":
        if pattern.startswith("{", i + 2):
            end = pattern.find("}", i + 3)
            digits = pattern[i + 3 : end] if end != -1 else ""
            if not digits or any(ch not in "0123456789abcdefABCDEF" for ch in digits):
                raise ValueError(f"bad \\x{{...}} escape in {pattern!r}")
            return f"\\U{int(digits, 16):08x}", end + 1
        return "\\x", i + 2
    if c == "0":
        return "\\0", i + 2
    if not in_class:
        if c == "A":
            return r"\A", i + 2
        if c == "z":
            return r"\Z", i + 2
        if c == "Q":
            end = pattern.find("\\E", i + 2)
            literal = pattern[i + 2 :] if end == -1 else pattern[i + 2 : end]
            return re.escape(literal), len(pattern) if end == -1 else end + 2
    if c.isdigit():
        raise ValueError("back-references are not supported in regular expressions (RE2 syntax)")
    if c in "pP":
        raise ValueError(f"Unicode classes (\\{c}{{...}}) are not supported: {pattern!r}")
    raise ValueError(f"unknown escape \\{c} in regular expression {pattern!r}")


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        out.append(r"\]")
        i += 1
    while i < len(pattern):
        c = pattern[i]
        if c == "]":
            out.append("]")
            return "".join(out), i + 1
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end != -1 else ""
            if name not in _POSIX:
                raise ValueError(f"unknown POSIX class [:{name}:] in {pattern!r}")
            out.append(_POSIX[name])
            i = end + 2
        elif c == "\\":
            piece, i = _escape(pattern, i, in_class=True)
            out.append(piece)
        else:
            # Escape what Python reads as (future) set syntax: a nested `[`, `&&`, `~~`, `||`.
            out.append("\\" + c if c in "[&~|" else c)
            i += 1
    raise ValueError(f"missing ']' in regular expression {pattern!r}")
