"""Every domain's router, in the order they appear in the OpenAPI document."""

from app.auth.router import router as auth_router
from app.methodologies.router import router as methodologies_router
from app.ops.router import router as ops_router
from app.organizations.router import router as organizations_router
from app.points.router import router as points_router
from app.users.router import router as users_router

ROUTERS = [
    ops_router,
    auth_router,
    organizations_router,
    methodologies_router,
    users_router,
    points_router,
]
