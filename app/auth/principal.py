import uuid
from dataclasses import dataclass
from enum import StrEnum


class CallerKind(StrEnum):
    """The kinds of platform token (``typ``): a staff login, an operator's client, a person via their operator."""

    staff = "staff"
    client = "client"
    user = "user"


@dataclass(frozen=True)
class Principal:
    """Who is calling: from a verified platform token, checked against the database."""

    kind: str  # a CallerKind: staff | client | user
    role: str  # authority | expert | operator | merchant | scene_operator | verifier | buyer | user
    subject: uuid.UUID  # staff user id, operator org id, or person (user) id
    org_id: uuid.UUID | None = None  # the organisation (staff of an org, operator client, user's operator)
    is_org_admin: bool = False
    scopes: frozenset[str] = frozenset()
    """A user token's OAuth scopes (what the person granted the operator, or the operator's allowed scopes
    for a token it minted itself); empty for staff and client tokens."""

    @property
    def scope(self) -> str:
        """Namespace for idempotency keys: who acts, and for which organisation.

        One person entrusting two operators is one account, but a user token acts through the
        operator it was issued to: the same key sent through another operator is another request.
        Every kind names its organisation (``-`` for none) and its subject, so no two callers meet.
        """
        return f"{self.kind}:{self.org_id or '-'}:{self.subject}"

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.role}:{self.subject}"

    @property
    def rate_bucket(self) -> str:
        return f"org:{self.org_id}" if self.org_id and self.kind != "user" else f"{self.kind}:{self.subject}"
