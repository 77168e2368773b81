"""All SQL of projects."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.projects.models import DEFAULT_STATUSES, Project, ProjectStatus


class ProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, project_id: uuid.UUID) -> Project | None:
        return await self.session.get(Project, project_id)

    async def list(
        self, *, limit: int, after: tuple[dt.datetime, uuid.UUID] | None, archived: bool | None
    ) -> list[Project]:
        query = select(Project).order_by(Project.created_at, Project.id).limit(limit)
        if after is not None:
            query = query.where(
                tuple_(Project.created_at, Project.id)
                > tuple_(literal(after[0]), literal(after[1]))
            )
        if archived is not None:
            query = query.where(Project.archived == archived)
        return list((await self.session.scalars(query)).all())

    async def keys_like(self, base: str) -> set[str]:
        """Existing keys that start with ``base`` (to find a free one)."""
        query = select(Project.key).where(Project.key.startswith(base, autoescape=True))
        return set((await self.session.scalars(query)).all())

    async def statuses(self, project_id: uuid.UUID) -> Sequence[ProjectStatus]:
        query = (
            select(ProjectStatus)
            .where(ProjectStatus.project_id == project_id)
            .order_by(ProjectStatus.position)
        )
        return (await self.session.scalars(query)).all()

    def add_default_statuses(self, project: Project) -> None:
        for position, (name, category) in enumerate(DEFAULT_STATUSES):
            self.session.add(
                ProjectStatus(
                    id=uuid.uuid4(),
                    project_id=project.id,
                    name=name,
                    category=category,
                    position=position,
                )
            )

    def add(self, project: Project) -> None:
        self.session.add(project)

    async def delete(self, project: Project) -> None:
        await self.session.delete(project)

    async def flush(self) -> None:
        await self.session.flush()

    async def refresh(self, project: Project) -> None:
        await self.session.refresh(project)
