"""Apply Alembic migrations programmatically (``serve``, ``migrate``, the test session)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def migrations_root() -> Path:
    """The folder holding ``alembic.ini`` and ``alembic/``: the source tree (editable install), or
    else the working directory (an installed wheel, e.g. the Docker image's ``/app``)."""
    for candidate in (ROOT, Path.cwd()):
        if (candidate / "alembic.ini").is_file() and (candidate / "alembic").is_dir():
            return candidate
    raise RuntimeError(f"alembic.ini and alembic/ not found in {ROOT} or {Path.cwd()}")


def alembic_config(database_url: str | None = None) -> Config:
    root = migrations_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "alembic"))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str | None = None, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)
