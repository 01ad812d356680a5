import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from app.core.types import Int32, Int64, Moment, Text

Title = Annotated[Text, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Description = Annotated[Text, StringConstraints(max_length=5000)]
Price = Annotated[Int64, Field(gt=0, le=1_000_000_000, description="Points per unit (whole points)")]
Stock = Annotated[Int64, Field(ge=0, le=100_000_000)]
Limit = Annotated[Int32, Field(gt=0, le=10_000)]
ValidDays = Annotated[
    Int32, Field(ge=1, le=3650, description="A voucher is valid this many days after the order")
]
ExpiryPolicy = Literal["refund", "forfeit"]
ImageUrl = Annotated[HttpUrl, Field(description="http(s) URL of a picture")]

_POLICY = (
    "What happens to a voucher still unused when it expires: `refund` gives the points back to the lots "
    "they came from (a lot expired meanwhile is expired at once), `forfeit` keeps them spent. Either way "
    "the stock goes back on sale."
)


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Title
    description: Description = ""
    images: list[ImageUrl] = Field(default_factory=list, max_length=10)
    points_price: Price
    stock: Stock | None = Field(default=None, description="Units for sale; null: unlimited")
    per_user_limit: Limit | None = Field(
        default=None, description="Units one person may hold; null: no limit"
    )
    sale_starts_at: Moment | None = Field(default=None, description="null: on sale at once")
    sale_ends_at: Moment | None = Field(default=None, description="null: until the merchant ends it")
    voucher_valid_days: ValidDays = 30
    operator_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=100,
        description="Only users whose token was issued through one of these operators may buy; null: everyone",
    )
    expiry_policy: ExpiryPolicy = Field(default="refund", description=_POLICY)


class ItemUpdate(BaseModel):
    """Only the fields sent change; `null` clears the nullable ones. Orders already placed keep their terms."""

    model_config = ConfigDict(extra="forbid")
    title: Title | None = None
    description: Description | None = None
    images: list[ImageUrl] | None = Field(default=None, max_length=10)
    points_price: Price | None = None
    stock: Stock | None = Field(default=None, description="Units left for sale from now on; null: unlimited")
    per_user_limit: Limit | None = None
    sale_starts_at: Moment | None = None
    sale_ends_at: Moment | None = None
    voucher_valid_days: ValidDays | None = None
    operator_ids: list[uuid.UUID] | None = Field(default=None, max_length=100)
    expiry_policy: ExpiryPolicy | None = None


class ItemRead(BaseModel):
    id: uuid.UUID
    merchant_id: uuid.UUID
    title: str
    description: str
    images: list[str]
    points_price: int
    stock: int | None = Field(description="Units left; null: unlimited")
    per_user_limit: int | None
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    voucher_valid_days: int
    operator_ids: list[uuid.UUID] | None
    expiry_policy: ExpiryPolicy
    status: Literal["active", "paused", "ended"]
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: uuid.UUID
    quantity: Int64 = Field(default=1, description="1 to 100 units (anything else: 422 `invalid_quantity`)")


class Voucher(BaseModel):
    code: str = Field(
        description="`XXXX-XXXX-XXXX-XXXX` (Crockford base32, 80 random bits); show it at the counter"
    )
    expires_at: datetime


OrderStatus = Literal["issued", "redeemed", "cancelled", "expired"]


class OrderRead(BaseModel):
    id: uuid.UUID
    item_id: uuid.UUID
    merchant_id: uuid.UUID
    title: str
    quantity: int
    unit_price: int
    points: int
    status: OrderStatus
    voucher: Voucher
    expiry_policy: ExpiryPolicy
    refunded_points: int
    created_at: datetime
    redeemed_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None


class MerchantOrderRead(BaseModel):
    """An order of the merchant's items; the voucher code is the buyer's and is never shown here."""

    id: uuid.UUID
    item_id: uuid.UUID
    title: str
    quantity: int
    unit_price: int
    points: int
    status: OrderStatus
    voucher_expires_at: datetime
    refunded_points: int
    created_at: datetime
    redeemed_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None


class RedeemedVoucher(BaseModel):
    order_id: uuid.UUID
    item_id: uuid.UUID
    title: str
    quantity: int
    points: int
    status: Literal["redeemed"]
    redeemed_at: datetime


class VoucherPreview(BaseModel):
    """What a valid voucher of the merchant buys, shown at the counter before it is used (no personal data)."""

    order_id: uuid.UUID
    item_id: uuid.UUID
    title: str
    quantity: int
    points: int
    ordered_at: datetime
    expires_at: datetime


class StatementLine(BaseModel):
    count: int
    quantity: int
    points: int


class Statement(BaseModel):
    day: date
    timezone: str
    merchant_id: uuid.UUID
    ordered: StatementLine = Field(description="Orders placed that day")
    redeemed: StatementLine = Field(description="Vouchers used at the counter that day")
    cancelled: StatementLine = Field(
        description="Orders cancelled by their buyers that day (points refunded)"
    )
    expired_refunded: StatementLine = Field(
        description="Vouchers that expired unused that day, points refunded"
    )
    expired_forfeited: StatementLine = Field(
        description="Vouchers that expired unused that day, points forfeited"
    )


class OperatorRedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operator_order_id: Annotated[
        Text, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
    ] = Field(description="The order's id in the operator's mall; a repeat returns the first result")
    points: Int64 = Field(description="Whole points, 1 to 1,000,000,000 (else 422 `invalid_points`)")
    description: Annotated[Text, StringConstraints(max_length=500)] = ""


class OperatorRedemptionRead(BaseModel):
    id: uuid.UUID
    operator_id: uuid.UUID
    operator_order_id: str
    user_id: uuid.UUID
    points: int
    description: str
    status: Literal["completed", "reversed"]
    created_at: datetime
    reversible_until: datetime
    reversed_at: datetime | None


class UsedPointsRow(BaseModel):
    day: date
    merchant_id: uuid.UUID | None = None
    operator_id: uuid.UUID | None = None
    orders: int = Field(description="Orders (or operator-mall redemptions) placed that day")
    points_used: int = Field(description="Points they spent")
    points_refunded: int = Field(description="Points given back that day (cancellations, refunds, reversals)")
    net_points: int = Field(description="points_used − points_refunded")


class UsedPointsReport(BaseModel):
    group_by: Literal["merchant", "operator"]
    timezone: str
    from_: date = Field(alias="from")
    to: date
    rows: list[UsedPointsRow]
    totals: dict[str, int]

    model_config = ConfigDict(populate_by_name=True)
