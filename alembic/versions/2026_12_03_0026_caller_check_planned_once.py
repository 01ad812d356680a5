"""the order's caller check planned once a connection: user_caller_may_act in PL/pgSQL, not SQL

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 15:00:00.000000
"""

from alembic import op

from app.core import migrate

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# user_caller_may_act (migration 0025) was a SQL function. PostgreSQL 16 does not inline a SQL function whose body
# has sub-selects, and plans its query again for every transaction that calls it: an order whose caller the
# process did not know (every attempt on a hot item, each a person new to the process) paid that planning in its
# statement (`perf`: `fmgr_sql` with `pg_plan_query` under the order's function). The same question in PL/pgSQL is
# planned once a connection and kept (its statement's plan cached like the order's own), with the same answers by
# the same indexes. Measured alone (5,000 calls from a PL/pgSQL function, each call its own transaction): 343–384 µs
# a round trip against 170–211; under orders of people new to the processes, PostgreSQL's CPU an order 0.92.


def may_act() -> str:
    """Migration 0025's function with its question word for word, as the body of a PL/pgSQL function."""
    return migrate.changed(
        migrate.earlier("0025").MAY_ACT,
        ("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
        (
            "STABLE LANGUAGE sql AS $fn$\n  SELECT EXISTS (",
            "STABLE LANGUAGE plpgsql AS $fn$\nBEGIN\n  RETURN EXISTS (",
        ),
        ("revoked_at IS NOT NULL))\n$fn$", "revoked_at IS NOT NULL));\nEND\n$fn$"),
    )


def upgrade() -> None:
    op.execute(may_act())


def downgrade() -> None:
    op.execute(migrate.earlier("0025").MAY_ACT.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
