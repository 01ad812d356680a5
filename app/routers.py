"""Every domain's router, in the order they appear in the OpenAPI document."""

from app.auth.router import router as auth_router
from app.ops.router import router as ops_router
from app.organizations.router import router as organizations_router

ROUTERS = [
    ops_router,
    auth_router,
    organizations_router,
]
