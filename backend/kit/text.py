"""Free-text input: PostgreSQL text cannot hold NUL, so it is refused at the edge (422)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

NUL_MESSAGE = "must not contain NUL (\\x00) characters"
#: The same rule as a JSON Schema pattern, so clients (and schema-driven tests) see it.
NO_NUL_PATTERN = r"^[^\x00]*$"


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


class _NoNulInSchema:
    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = handler(core_schema)
        schema.setdefault("pattern", NO_NUL_PATTERN)
        return schema


#: Any user-supplied string that may reach PostgreSQL: every schema with free text uses it.
FreeText = Annotated[str, AfterValidator(refuse_nul), _NoNulInSchema()]


#: No NUL and at least one character that is not white space.
NOT_BLANK_PATTERN = r"^[^\x00]*[^\x00\s][^\x00]*$"


class _NotBlankInSchema:
    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema: dict[str, Any] = handler(core_schema)
        schema["pattern"] = NOT_BLANK_PATTERN
        return schema


#: Free text that must not be blank (names, titles, bodies); the "not blank" rule itself is the
#: model's validator, this documents it in the JSON Schema.
NotBlankText = Annotated[str, AfterValidator(refuse_nul), _NotBlankInSchema()]
