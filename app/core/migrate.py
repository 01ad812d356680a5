"""Apply Alembic migrations programmatically (``serve``, ``migrate``, the test session)."""

import importlib.util
from pathlib import Path
from types import ModuleType

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


def earlier(revision: str) -> ModuleType:
    """An earlier migration's module (``alembic/versions/*_<revision>_*.py``), for the text of a function it
    created: a later migration that changes the function builds the new text from it (:func:`changed`), and its
    downgrade creates it again from the same text."""
    path = next((migrations_root() / "alembic" / "versions").glob(f"*_{revision}_*.py"))
    spec = importlib.util.spec_from_file_location(f"migration_{revision}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def changed(text: str, *changes: tuple[str, str]) -> str:
    """``text`` with each ``(old, new)`` replaced, each ``old`` found exactly once (a change that no longer
    applies fails the migration rather than being silently skipped)."""
    for old, new in changes:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text
