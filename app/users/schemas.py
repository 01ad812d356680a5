import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.core.types import Moment, Text

ExternalUserId = Annotated[Text, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]


class Identifier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["phone"]
    value: Annotated[Text, StringConstraints(min_length=3, max_length=40)] = Field(
        description="The phone number, any common notation; normalised to E.164 and hashed, never stored"
    )


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agreement_version: Annotated[Text, StringConstraints(min_length=1, max_length=50)]
    accepted_at: Moment = Field(
        description="When the person accepted the entrustment agreement (with offset)"
    )


class EnrolUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_user_id: ExternalUserId
    identifier: Identifier
    consent: Consent


class Enrolment(BaseModel):
    user_id: uuid.UUID
    external_user_id: str
    agreement_version: str
    accepted_at: datetime
    created: bool = Field(
        description="False when this entrustment already existed (the call changed nothing)"
    )


class Withdrawal(BaseModel):
    user_id: uuid.UUID
    external_user_id: str
    withdrawn_at: datetime


class EntrustmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    operator_id: uuid.UUID
    external_user_id: str
    agreement_version: str
    accepted_at: datetime
    withdrawn_at: datetime | None
    confirmed_by: str = Field(
        description="`person_otp`: the person confirmed it on the platform (phone and one-time code); "
        "`operator_asserted`: an operator the authority trusts enrolled the person on its own word"
    )
    confirmed_at: datetime | None = Field(
        description="When the person confirmed it (none if operator-asserted)"
    )
    scope: str | None = Field(
        description="What the person granted the operator (OAuth scopes, space-separated); none if "
        "operator-asserted (its user tokens carry the operator's allowed scopes)"
    )


class AccountDeletion(BaseModel):
    user_id: uuid.UUID
    deleted_at: datetime
