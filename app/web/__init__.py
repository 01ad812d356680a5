"""The web interface's plumbing, in one place: templates and their language, browser sessions,
CSRF, security headers, error pages, static files and the API reference pages.

:func:`install` adds it all to the application; domains write their pages in ``pages.py`` with
:func:`app.web.dependencies.page_router` and list them in ``app/pages.py``.
"""

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    from app.pages import PAGE_ROUTERS
    from app.web import errors, pages
    from app.web.middleware import WebMiddleware
    from app.web.static import CachedStaticFiles
    from app.web.templating import STATIC_DIR, STATIC_PREFIX

    errors.install(app)
    app.include_router(pages.docs_router)
    app.include_router(pages.router)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    app.mount(STATIC_PREFIX, CachedStaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(WebMiddleware)
