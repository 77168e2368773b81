"""Project use cases. Services never commit: the request owns the transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError

from backend.events import outbox
from backend.events.types import ProjectArchived, ProjectCreated, ProjectDeleted, ProjectUpdated
from backend.kit.errors import Problem
from backend.kit.etag import IfMatch
from backend.kit.pagination import decode_keyset_cursor, encode_keyset_cursor
from backend.projects.keys import candidates, derive_key
from backend.projects.models import Project
from backend.projects.repository import ProjectRepository
from backend.projects.schemas import ProjectCreate, ProjectUpdate


class ProjectService:
    def __init__(self, repo: ProjectRepository) -> None:
        self.repo = repo

    async def create(self, data: ProjectCreate, *, actor: uuid.UUID | None) -> Project:
        """Create a project owned by the current tenant."""
        if data.key is not None:
            if await self.repo.keys_like(data.key) & {data.key}:
                raise Problem(409, "project-key-taken", f"Another project has the key {data.key}.")
            key = data.key
        else:
            base = derive_key(data.name)
            key = candidates(base, await self.repo.keys_like(base))
        project = Project(
            id=uuid.uuid4(),
            key=key,
            name=data.name,
            description=data.description,
            created_by=actor,
        )
        self.repo.add(project)
        try:
            await self.repo.flush()
        except IntegrityError as exc:  # another create took the key since it was checked
            raise Problem(409, "project-key-taken", f"Another project has the key {key}.") from exc
        self.repo.add_default_statuses(project)
        await self.repo.flush()
        await self.repo.refresh(project)
        outbox.record(
            self.repo.session, ProjectCreated(project_id=project.id, key=key, name=project.name)
        )
        return project

    async def get(self, project_id: uuid.UUID) -> Project:
        """A project of the current tenant, or 404."""
        project = await self.repo.get(project_id)
        if project is None:
            raise Problem(404, "project-not-found", f"No project {project_id}.")
        return project

    async def list(
        self, *, limit: int, cursor: str | None, archived: bool | None
    ) -> tuple[list[Project], str | None]:
        """One page of projects in creation order, and the cursor of the next page."""
        after = decode_keyset_cursor(cursor) if cursor else None
        rows = await self.repo.list(limit=limit + 1, after=after, archived=archived)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = encode_keyset_cursor(last.created_at, last.id)
        return rows, next_cursor

    async def update(
        self, project_id: uuid.UUID, data: ProjectUpdate, *, if_match: IfMatch = None
    ) -> Project:
        """Apply the given fields; fields left out stay as they are, a null description clears."""
        project = await self.get(project_id)
        if if_match is not None:
            if_match(project.version)
        changes = data.model_dump(exclude_unset=True)
        if "description" in changes and changes["description"] is None:
            changes["description"] = ""
        before = {key: getattr(project, key) for key in changes}
        for key, value in changes.items():
            setattr(project, key, value)
        await self.repo.flush()
        await self.repo.refresh(project)
        differ = {k: getattr(project, k) for k in changes if before[k] != getattr(project, k)}
        if "archived" in differ:
            outbox.record(
                self.repo.session,
                ProjectArchived(project_id=project.id, archived=differ.pop("archived")),
            )
        if differ:
            outbox.record(self.repo.session, ProjectUpdated(project_id=project.id, changes=differ))
        return project

    async def delete(self, project_id: uuid.UUID, *, if_match: IfMatch = None) -> None:
        """Delete a project of the current tenant, or 404."""
        project = await self.get(project_id)
        if if_match is not None:
            if_match(project.version)
        outbox.record(self.repo.session, ProjectDeleted(project_id=project.id, key=project.key))
        await self.repo.delete(project)
