"""Slugs and schema names (property-based): one module makes them and refuses anything else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenancy.naming import (
    RESERVED_SLUGS,
    SCHEMA_RE,
    SHARED_SCHEMA,
    TENANT_PLACEHOLDER,
    InvalidSchemaName,
    InvalidSlug,
    is_valid_slug,
    quote_schema,
    schema_for_slug,
    validate_schema_name,
    validate_slug,
)

valid_slugs = st.from_regex(r"\A[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,5}){0,5}\Z").filter(
    lambda s: 2 <= len(s) <= 40 and s not in RESERVED_SLUGS
)


@given(valid_slugs)
def test_valid_slug_gives_valid_tenant_schema(slug: str) -> None:
    schema = schema_for_slug(slug)
    assert SCHEMA_RE.fullmatch(schema)
    assert schema.startswith("t_") and len(schema) <= 63
    assert validate_schema_name(schema) == schema
    assert quote_schema(schema) == f'"{schema}"'


@given(valid_slugs, valid_slugs)
def test_schema_names_are_injective(a: str, b: str) -> None:
    assert (schema_for_slug(a) == schema_for_slug(b)) == (a == b)


@given(st.text(max_size=80))
def test_arbitrary_text_is_refused_or_matches_the_rules(text: str) -> None:
    if is_valid_slug(text):
        assert 2 <= len(text) <= 40 and text[0].isascii() and text[0].islower()
        assert set(text) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    else:
        with pytest.raises(InvalidSlug):
            schema_for_slug(text)


@pytest.mark.parametrize(
    "slug", sorted(RESERVED_SLUGS & {"www", "api", "admin", "platform", "public"})
)
def test_reserved_slugs_refused(slug: str) -> None:
    with pytest.raises(InvalidSlug, match="reserved"):
        validate_slug(slug)


@pytest.mark.parametrize(
    "slug",
    [
        "a",
        "A-corp",
        "1abc",
        "-abc",
        "abc-",
        "ab--cd",
        "a_b",
        "a" * 41,
        "acme corp",
        "acme;drop",
        "ümlaut",
        "",
    ],
)
def test_bad_slugs_refused(slug: str) -> None:
    with pytest.raises(InvalidSlug):
        validate_slug(slug)


@pytest.mark.parametrize(
    "name",
    [
        't_x"; DROP SCHEMA public; --',
        "public",
        "pg_catalog",
        TENANT_PLACEHOLDER,
        "T_ACME",
        "t_" + "a" * 62,
        "",
        "information_schema",
    ],
)
def test_schema_names_outside_the_rules_refused(name: str) -> None:
    with pytest.raises(InvalidSchemaName):
        validate_schema_name(name)


def test_shared_schema_is_valid() -> None:
    assert validate_schema_name(SHARED_SCHEMA) == SHARED_SCHEMA
