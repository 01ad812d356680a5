"""Errors of the web plumbing, with their status and stable code like every domain's."""

from app.core.errors import DomainError, Forbidden


class CsrfRefused(Forbidden):
    """A state-changing request without this browser's form token (or with another one)."""

    code, title = "csrf_failed", "Form token missing or wrong"


class SignInRequired(DomainError):
    """A page for signed-in staff: browsers are sent to the sign-in page, which returns them here."""

    status, code, title = 401, "sign_in_required", "Sign-in required"

    def __init__(self, next_url: str):
        super().__init__("this page needs a signed-in staff account")
        self.next_url = next_url


class PageForbidden(Forbidden):
    code, title = "page_forbidden", "Not for this account"
