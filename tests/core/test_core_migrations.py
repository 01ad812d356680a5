"""The table models and the migrations describe the same database.

Alembic's autogenerate comparison runs against the database the migrations built; any difference
(a column, an index, a constraint, a type) means a model changed without a migration, or the other
way round. A difference is fixed by a NEW migration: shipped migrations are never edited.
"""

import hashlib
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.core import db
from app.models import metadata

VERSIONS = Path(__file__).resolve().parents[2] / "alembic" / "versions"

# SHA-256 of every migration shipped so far. A new migration is added here once it ships;
# an edited one fails this test (write a new migration instead).
SHIPPED = {
    "2026_11_22_0001_foundation.py": "60a00e5d1fd2c925955997a3468e06568913bee251174dbe7d0d0c3a895a4e50",
    "2026_11_22_0002_methodologies.py": "46b7991ef8b510cf68a7ce7f15e46fad70fb158defc581c35630eef45d24abed",
    "2026_11_22_0003_points.py": "c98b02c9ccbd04bdfa06911313d393c686c793c3222ccd90cc9e4f1f390c01e7",
    "2026_11_22_0004_experts_reviews_scenes.py": "0b8e609f21f46860d4138108c365d187770a45f3a1bc425d8497324af4469c1d",
    "2026_11_22_0005_mall.py": "5b199d690fdd0b0169168d20d63170909f0637ae14bcc2873b869fd65020f183",
    "2026_11_22_0006_cer.py": "5b62b1998c106b5d1308f8b87736bce0f0af7d6fdd50ee4968dd24a7ff38c67e",
}


def _ignore_server_only(obj, name, type_, reflected, compare_to) -> bool:
    """Objects only the migrations create (hand-written SQL: BRIN indexes, partial indexes kept
    in SQL, functions) have no model counterpart; they are reflected but not in the metadata."""
    return not (type_ in {"index", "unique_constraint"} and reflected and compare_to is None)


async def test_models_match_the_migrated_database(app):
    async with db.engine().connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(
                    sync, opts={"compare_type": True, "include_object": _ignore_server_only}
                ),
                metadata,
            )
        )
    assert diff == []


def test_shipped_migrations_are_unchanged():
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in VERSIONS.glob("*.py")}
    assert {name: digests.get(name) for name in SHIPPED} == SHIPPED
