import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.core.types import Text


class Affiliation(BaseModel):
    name: Text = Field(min_length=1, max_length=200, description="The organisation the expert works for")
    org_id: uuid.UUID | None = Field(
        default=None, description="Its id, when it is an organisation registered on this platform"
    )


class ExpertAccount(BaseModel):
    username: Text = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: Text = Field(min_length=10, max_length=200)


class ExpertCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    fields: list[Text] = Field(
        min_length=1,
        max_length=10,
        description="Fields of expertise: travel, buildings, energy, forestry, retail, waste, agriculture, "
        "ocean, verification, data",
    )
    affiliation: Affiliation
    account: ExpertAccount = Field(description="The expert's login (role `expert`)")
    active: bool = True


class ExpertUpdate(BaseModel):
    name: Text | None = Field(default=None, min_length=1, max_length=200)
    fields: list[Text] | None = Field(default=None, min_length=1, max_length=10)
    affiliation: Affiliation | None = None
    active: bool | None = Field(default=None, description="Inactive experts are never drawn")


class ExpertPublic(BaseModel):
    """What the public list discloses (SZ 29): no logins."""

    id: uuid.UUID
    name: str
    fields: list[str]
    affiliation: Affiliation


class ExpertRead(ExpertPublic):
    active: bool
    username: str
    created_at: datetime
    updated_at: datetime
