"""Every domain's page router (HTML, out of the OpenAPI document), mounted by :func:`app.web.install`."""

from app.public.pages import router as public_pages

PAGE_ROUTERS = [
    public_pages,
]
