"""Every domain's scheduled jobs: importing a domain's ``tasks.py`` registers its jobs (``@job``).

``app.main`` hands :func:`jobs` to the scheduler's leader; a new domain with jobs adds its import here.
"""

from app.auth import tasks as auth_tasks  # noqa: F401
from app.core import scheduler
from app.core import tasks as core_tasks  # noqa: F401
from app.mall import tasks as mall_tasks  # noqa: F401
from app.points import tasks as points_tasks  # noqa: F401
from app.users import tasks as users_tasks  # noqa: F401
from app.web import tasks as web_tasks  # noqa: F401
from app.webhooks import tasks as webhooks_tasks  # noqa: F401


def jobs() -> list[scheduler.Job]:
    """Every job the domains registered (their ``tasks.py`` modules are imported above)."""
    return list(scheduler.JOBS)
