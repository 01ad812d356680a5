"""The persistence seam, checked: SQL runs only in a domain's ``repository.py`` and in ``app/core``.

A call that executes SQL — on an SQLAlchemy session or connection (``execute``, ``scalar``,
``scalars``, ``stream``, ``get``, ``add``, ``delete``, ``merge``, ``refresh``) or on an asyncpg
connection (``fetch``, ``fetchrow``, ``fetchval``, ``executemany``, ``copy_*``) — anywhere else is
named here with its file and line. ``docs/architecture.md`` says where such code goes instead.
"""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# Methods that run SQL whatever they are called on.
SQL_METHODS = {
    "execute",
    "executemany",
    "fetch",
    "fetchrow",
    "fetchval",
    "scalar",
    "scalars",
    "stream",
    "stream_scalars",
    "copy_records_to_table",
    "copy_to_table",
    "copy_from_query",
    "copy_from_table",
    "exec_driver_sql",
    "run_sync",
}
# Methods that run SQL when called on a session.
SESSION_METHODS = {"add", "add_all", "get", "delete", "merge", "refresh"}
SESSION_NAMES = {"session", "s", "db_session"}


def _allowed(path: Path) -> bool:
    rel = path.relative_to(APP)
    # a domain may split its repository: webhooks/delivery_repository.py
    repository = path.name == "repository.py" or path.name.endswith("_repository.py")
    return rel.parts[0] == "core" or repository or path.name == "models.py"


def _sql_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        name = receiver.id if isinstance(receiver, ast.Name) else getattr(receiver, "attr", "")
        if method in SQL_METHODS or (method in SESSION_METHODS and name in SESSION_NAMES):
            found.append(f"{path.relative_to(APP.parent)}:{node.lineno} {name}.{method}()")
    return found


def test_sql_runs_only_in_repositories_and_core():
    outside = [call for path in sorted(APP.rglob("*.py")) if not _allowed(path) for call in _sql_calls(path)]
    assert outside == []


def test_the_check_sees_sql():
    """The check itself: a service that executes a statement is caught."""
    sample = APP / "core" / "_architecture_sample.py"
    sample.write_text("async def f(session):\n    await session.execute('SELECT 1')\n    session.add(1)\n")
    try:
        assert sorted(c.split(" ", 1)[1] for c in _sql_calls(sample)) == [
            "session.add()",
            "session.execute()",
        ]
    finally:
        sample.unlink()
