"""Every domain's page router (HTML, out of the OpenAPI document), mounted by :func:`app.web.install`."""

from app.auth.pages import router as auth_pages
from app.cer.operator_pages import router as cer_operator_pages
from app.cer.pages import router as cer_pages
from app.cer.verifier_pages import router as verifier_pages
from app.console.pages import router as console_pages
from app.dashboards.pages import router as dashboard_pages
from app.experts.pages import router as expert_pages
from app.mall.operator_pages import router as mall_operator_pages
from app.mall.pages import router as mall_pages
from app.mall.public_pages import router as mall_public_pages
from app.methodologies.pages import router as methodology_pages
from app.organizations.operator_pages import router as operator_pages
from app.organizations.pages import router as organization_pages
from app.points.pages import router as points_pages
from app.public.pages import router as public_pages
from app.reviews.pages import router as review_pages
from app.scenes.pages import router as scene_pages
from app.scenes.public_pages import router as scene_public_pages
from app.users.operator_pages import router as people_pages
from app.users.pages import router as user_pages
from app.webhooks.pages import router as webhook_pages

PAGE_ROUTERS = [
    auth_pages,
    user_pages,
    public_pages,
    organization_pages,
    scene_pages,
    mall_pages,
    methodology_pages,
    expert_pages,
    review_pages,
    scene_public_pages,
    verifier_pages,
    cer_pages,
    console_pages,
    mall_public_pages,
    operator_pages,
    points_pages,
    people_pages,
    mall_operator_pages,
    cer_operator_pages,
    dashboard_pages,
    webhook_pages,
]
