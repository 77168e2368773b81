"""Seed many tasks into one tenant schema with one INSERT ... SELECT generate_series.

Shared by the benchmark and tests/test_stats_plans.py. The data is shaped like a real
workspace: tasks spread evenly over the given projects and their statuses (board position
0, 1, 2 -> todo, in progress, done), creation times over the last 120 days, six in seven tasks
assigned round-robin, seven in ten without a due date and the rest due from two weeks ago to
three months ahead, done tasks completed up to 300 hours after creation (never in the future).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Connection, text

from tenancy.naming import quote_schema

_SEED = """
INSERT INTO {s}.tasks (id, project_id, number, title, description, status_id, status_category,
                       priority, assignee_id, due_date, position, created_at, updated_at,
                       completed_at)
SELECT gen_random_uuid(), p.id, :first_number + g / :projects, 'Task ' || g || ' ' || w.word,
       'Seeded task ' || g || ' about ' || w.word || ' and ' || w.other, st.id, st.category,
       g % 5,
       CASE WHEN g % 7 = 0 THEN NULL
            ELSE (CAST(:users AS uuid[]))[1 + g % cardinality(CAST(:users AS uuid[]))] END,
       CASE WHEN g % 10 < 7 THEN NULL ELSE current_date + (g * 13 % 104 - 14) END,
       g, c.created, c.created,
       CASE WHEN st.category = 'done'
            THEN least(now(), c.created + make_interval(hours => 1 + g % 300)) END
FROM generate_series(0, :total - 1) AS g
CROSS JOIN LATERAL (SELECT now() - make_interval(mins => (g * 37) % (120 * 24 * 60))
                    AS created) AS c
CROSS JOIN LATERAL (SELECT (ARRAY['billing','login','export','search','mobile','invoice',
                                  'report','sync'])[1 + g % 8] AS word,
                           (ARRAY['alpha','beta','gamma','delta'])[1 + g % 4] AS other) AS w
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM {s}.projects
      WHERE id = ANY(CAST(:project_ids AS uuid[]))) AS p ON p.i = g % :projects
JOIN {s}.project_statuses AS st ON st.project_id = p.id AND st.position = (g / :projects) % 3
"""


def seed_tasks(
    conn: Connection,
    schema: str,
    project_ids: Sequence[uuid.UUID],
    users: Sequence[uuid.UUID],
    total: int,
) -> None:
    """Insert ``total`` tasks over ``project_ids`` (fresh projects with the default statuses),
    then move each project's task counter past the numbers used. The caller commits."""
    if not project_ids or not users:
        raise ValueError("need at least one project and one user")
    s = quote_schema(schema)
    conn.execute(
        text(_SEED.format(s=s)),
        {
            "total": total,
            "projects": len(project_ids),
            "project_ids": [str(p) for p in project_ids],
            "users": [str(u) for u in users],
            "first_number": 1,
        },
    )
    conn.execute(
        text(
            f"UPDATE {s}.projects SET next_task_number = n.top + 1 FROM "
            f"(SELECT project_id, max(number) AS top FROM {s}.tasks GROUP BY project_id) AS n "
            f"WHERE projects.id = n.project_id"
        )
    )
