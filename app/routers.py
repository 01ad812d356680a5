"""Every domain's router, in the order they appear in the OpenAPI document (grouped by its tags, in
``app.openapi_tags`` order) and are matched: the most requested first."""

from app.auth.router import router as auth_router
from app.cer.router import certificates_router
from app.cer.router import public_router as cer_public_router
from app.cer.router import router as cer_router
from app.experts.router import public_router as experts_public_router
from app.experts.router import router as experts_router
from app.mall.router import direct_writes as mall_direct_writes
from app.mall.router import router as mall_router
from app.methodologies.router import router as methodologies_router
from app.ops.router import router as ops_router
from app.organizations.router import router as organizations_router
from app.points.router import direct_reads as points_direct_reads
from app.points.router import router as points_router
from app.public.router import router as public_router
from app.reviews.router import router as reviews_router
from app.scenes.router import public_router as scenes_public_router
from app.scenes.router import router as scenes_router
from app.users.router import router as users_router
from app.webhooks.delivery_router import router as webhook_delivery_router
from app.webhooks.router import events_router as webhook_events_router
from app.webhooks.router import router as webhooks_router

ROUTERS = [
    ops_router,
    points_direct_reads,  # matched second: the request a person's app makes most
    mall_direct_writes,  # and third the order placed at lunch
    auth_router,
    organizations_router,
    methodologies_router,
    users_router,
    points_router,
    public_router,
    experts_router,
    reviews_router,
    scenes_router,
    scenes_public_router,
    experts_public_router,
    cer_router,
    cer_public_router,
    certificates_router,
    mall_router,
    webhooks_router,
    webhook_events_router,
    webhook_delivery_router,
]
