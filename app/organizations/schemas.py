import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.core.types import JsonObject, Text


class OrgKind(StrEnum):
    operator = "operator"
    merchant = "merchant"
    scene_operator = "scene_operator"
    verifier = "verifier"
    buyer = "buyer"


class OrgStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    suspended = "suspended"


class OrgDecision(StrEnum):
    """What the authority decides about an organisation (``POST /v1/organizations/{id}/<decision>``)."""

    approve = "approve"
    reject = "reject"
    suspend = "suspend"
    reinstate = "reinstate"


class StaffRole(StrEnum):
    """``staff_users.role``: the authority's staff, experts, or staff of an organisation (its kind is the role)."""

    authority = "authority"
    expert = "expert"
    org = "org"


Scope = Literal["behaviours:submit", "account:read", "mall"]
"""What an operator may ask a person for (OAuth scopes): submit their behaviours, read their account
(balance, and the behaviours and ledger entries of this operator), order in the platform mall."""
SCOPES: tuple[str, ...] = get_args(Scope)


def scope_list(value: Any) -> Any:
    """``allowed_scopes`` as stored (space-separated) → a list."""
    return value.split() if isinstance(value, str) else value


Username = Annotated[Text, StringConstraints(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")]
Password = Annotated[Text, StringConstraints(min_length=8, max_length=200)]
CreditCode = Annotated[
    Text,
    BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$"),
    Field(description="Unified social credit code (统一社会信用代码), 18 characters"),
]


class AdminAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    password: Password


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["operator", "merchant", "scene_operator", "verifier", "buyer"]
    name: Annotated[Text, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    credit_code: CreditCode
    admin: AdminAccount


class OrganizationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    kind: str
    name: str
    credit_code: str
    status: str
    reason: str | None
    created_at: datetime
    decided_at: datetime | None
    trusted_enrolment: bool = Field(
        description="An operator the authority trusts to enrol people on its own word (`POST /v1/operator/users`)"
        " and mint their user tokens; otherwise people confirm their entrustment through `/oauth/authorize`"
    )
    allowed_scopes: Annotated[list[Scope], BeforeValidator(scope_list)] = Field(
        description="What this operator may ask a person for at `/oauth/authorize` (and what the user tokens it"
        " mints itself carry when trusted); set by the authority"
    )


Reason = Annotated[
    Text,
    StringConstraints(min_length=1, max_length=1000, strip_whitespace=True, pattern=r"\S"),
    Field(description="Why (kept in the audit log)"),
]


class AllowedScopesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(SCOPES),
        description="The scopes the operator may ask people for: `behaviours:submit`, `account:read`, `mall`",
    )
    reason: Reason


class TrustedEnrolmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    trusted: bool = Field(
        description="true: the operator may enrol people on its own word and mint their user tokens (for"
        " example the city's real-name government app); false: people confirm through `/oauth/authorize`"
    )
    reason: Reason


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(max_length=1000)] | None = None


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    jwk: JsonObject = Field(description="The public JWK: EC P-256 (ES256) or RSA ≥ 2048 bits (RS256)")


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    kid: str
    algorithm: str
    jwk: dict[str, Any]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None = Field(
        default=None, description="When a client assertion or a batch signature last verified (to the minute)"
    )


class RedirectUriCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    uri: Annotated[Text, StringConstraints(min_length=8, max_length=2000)] = Field(
        description="The exact URI the platform may send a person back to with an authorization code: "
        "`https://…` (outside production also `http://127.0.0.1`, `http://[::1]` or `http://localhost`, any "
        "port). Compared as an exact string; no wildcards, no fragment, no user info."
    )


class RedirectUriRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    uri: str
    created_at: datetime
