"""Tasks for tests of comments, labels and watchers, inserted as rows (the tasks API is
separate): a project made over HTTP (it gets its default statuses), then a task row in it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from backend.projects.models import ProjectStatus
from backend.tasks.models import Task
from tenancy.db import translate_map


def insert_task(sync_engine: Any, tenant: Any, project_id: str, title: str = "a task") -> str:
    """A task in the project's first status; returns its id."""
    task_id = uuid.uuid4()
    with sync_engine.begin() as conn:
        bound = conn.execution_options(
            schema_translate_map=translate_map(tenant.record.schema_name)
        )
        status = bound.execute(
            select(ProjectStatus.id, ProjectStatus.category)
            .where(ProjectStatus.project_id == uuid.UUID(project_id))
            .order_by(ProjectStatus.position)
            .limit(1)
        ).one()
        number = bound.execute(
            select(func.coalesce(func.max(Task.number), 0) + 1).where(
                Task.project_id == uuid.UUID(project_id)
            )
        ).scalar_one()
        bound.execute(
            insert(Task).values(
                id=task_id,
                project_id=uuid.UUID(project_id),
                number=number,
                title=title,
                description="",
                status_id=status.id,
                status_category=status.category,
                priority=0,
                position=0,
            )
        )
    return str(task_id)


async def new_task(
    client: httpx.AsyncClient, sync_engine: Any, tenant: Any, headers: dict[str, str]
) -> str:
    """A new project of ``tenant`` (created by ``headers``' caller) with one task; its id."""
    project = await client.post("/api/v1/projects", json={"name": "Work"}, headers=headers)
    assert project.status_code == 201, project.text
    return insert_task(sync_engine, tenant, project.json()["id"])
