"""Every domain's scheduled jobs, imported so they register with :mod:`app.core.scheduler`."""

from app.core import tasks as core_tasks  # noqa: F401
from app.mall import tasks as mall_tasks  # noqa: F401
from app.points import tasks as points_tasks  # noqa: F401
from app.web import tasks as web_tasks  # noqa: F401
