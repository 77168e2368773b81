"""Free-text input: PostgreSQL text cannot hold NUL, so it is refused at the edge (422)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

NUL_MESSAGE = "must not contain NUL (\\x00) characters"


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


#: Any user-supplied string that may reach PostgreSQL: every schema with free text uses it.
FreeText = Annotated[str, AfterValidator(refuse_nul)]
