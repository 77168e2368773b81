"""Helpers of the task tests: projects, statuses, labels (inserted directly) and tasks."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert

from backend.tasks.models import Label
from tenancy.db import translate_map
from tests.conftest import TenantHandle


async def project_with_statuses(
    client: Any, headers: dict[str, str], name: str = "Ops", key: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """A new project and its statuses by category (todo, in_progress, done) -> id."""
    body: dict[str, Any] = {"name": name}
    if key:
        body["key"] = key
    made = await client.post("/api/v1/projects", json=body, headers=headers)
    assert made.status_code == 201, made.text
    project = made.json()
    statuses = await client.get(f"/api/v1/projects/{project['id']}/statuses", headers=headers)
    return project, {s["category"]: s["id"] for s in statuses.json()}


async def new_task(
    client: Any, headers: dict[str, str], project_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"title": "a task", **fields}
    resp = await client.post(f"/api/v1/projects/{project_id}/tasks", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def add_labels(sync_engine: Any, tenant: TenantHandle, *names: str) -> list[str]:
    """Labels inserted straight into the tenant's schema (their routes live elsewhere)."""
    ids = [uuid.uuid4() for _ in names]
    with sync_engine.begin() as conn:
        bound = conn.execution_options(
            schema_translate_map=translate_map(tenant.record.schema_name)
        )
        for label_id, name in zip(ids, names, strict=True):
            bound.execute(insert(Label).values(id=label_id, name=name, color="#112233"))
    return [str(i) for i in ids]
