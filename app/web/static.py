"""``/static``: the pages' own files and the vendored libraries, cached for a year.

URLs in templates come from :func:`app.web.templating.static_url`, which appends a hash of the
file, and vendored libraries sit in folders named with their version: a changed file is a new URL.
"""

import os

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CACHE_CONTROL = "public, max-age=31536000, immutable"


class CachedStaticFiles(StaticFiles):
    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = CACHE_CONTROL
        return response
