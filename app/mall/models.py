"""The rewards mall (SZ 23–24): merchants' items, people's orders with vouchers, operator-mall redemptions.

Concurrency is decided by the database, with row locks always taken in this order:

1. an existing order (or operator redemption) row — cancel, expiry, reversal: a conditional update
   of its ``status``, which makes each of them happen exactly once;
2. the person's point account (``points_service.spend`` / ``refund``);
3. stock slots of the item (``mall_item_stock``), see below;
4. the per-(item, person) counter ``mall_purchases`` — a conditional upsert for the per-person limit.

Placing an order takes 2 → 3 → 4 (the account first, so a stock slot is held only from the stock
update to the commit); cancel and expiry take 1 → 2 → 3 → 4; counter redemption takes 1 only; an
edit of the stock locks the item row, then all its slots in slot order.

A limited item's stock is split over up to 64 slot rows, so that concurrent orders of a hot item
do not queue on one row through their commits (each commit waits for its WAL flush). An order takes
its units from one slot with a conditional ``UPDATE … SET remaining = remaining - q`` on a slot
nobody holds (``FOR UPDATE SKIP LOCKED``), inside a savepoint. If no free slot has enough, it rolls
back to the savepoint — releasing any slot it locked on the way, since PostgreSQL keeps the lock of
a row whose re-check failed — and then waits for slots in ascending slot order only (an order
larger than any slot locks them all, in order): waits never form a cycle, and the answer is exact.
Units never go below zero (a check constraint besides).
"""

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel


class ItemStatus(StrEnum):
    active = "active"
    paused = "paused"
    ended = "ended"


class OrderStatus(StrEnum):
    issued = "issued"  # voucher valid, not yet used
    redeemed = "redeemed"  # used at the counter (核销)
    cancelled = "cancelled"  # by the person, points refunded
    expired = "expired"  # unused when it expired: refunded or forfeited per the item's policy


class RedemptionStatus(StrEnum):
    completed = "completed"
    reversed = "reversed"


def _ts(nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, **kw)


def _big(nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(sa.BigInteger, nullable=nullable, **kw)


class MallItem(SQLModel, table=True):
    """Goods or a service a merchant offers for points; a limited item's units left are in its slots."""

    __tablename__ = "mall_items"
    __table_args__ = (
        sa.Index("ix_mall_items_merchant_created", "merchant_id", "created_at", "id"),
        sa.Index(
            "ix_mall_items_active_created", "created_at", "id", postgresql_where=sa.text("status = 'active'")
        ),
        sa.CheckConstraint("points_price > 0", name="price_positive"),
        sa.CheckConstraint("per_user_limit IS NULL OR per_user_limit > 0", name="limit_positive"),
        sa.CheckConstraint("voucher_valid_days BETWEEN 1 AND 3650", name="validity_days"),
        sa.CheckConstraint(
            "sale_starts_at IS NULL OR sale_ends_at IS NULL OR sale_ends_at > sale_starts_at",
            name="sale_window",
        ),
        sa.CheckConstraint("expiry_policy IN ('refund', 'forfeit')", name="expiry_policy_known"),
        sa.CheckConstraint("status IN ('active', 'paused', 'ended')", name="status_known"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    merchant_id: uuid.UUID = Field(foreign_key="organizations.id")
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    images: list[str] = Field(
        default_factory=list, sa_column=sa.Column(JSONB, nullable=False, server_default="[]")
    )
    points_price: int = Field(sa_column=_big())
    stock_limited: bool = Field(description="False: unlimited; true: the units left are in mall_item_stock")
    per_user_limit: int | None = Field(default=None, sa_column=sa.Column(sa.Integer, nullable=True))
    sale_starts_at: datetime | None = Field(default=None, sa_column=_ts(True))
    sale_ends_at: datetime | None = Field(default=None, sa_column=_ts(True))
    voucher_valid_days: int
    operator_ids: list[uuid.UUID] | None = Field(
        default=None,
        sa_column=sa.Column(ARRAY(sa.Uuid), nullable=True),
        description="Operators whose users alone may buy (NULL: everyone)",
    )
    expiry_policy: str = Field(default="refund", max_length=10)
    status: str = Field(default=ItemStatus.active, max_length=10)
    created_at: datetime = Field(sa_column=_ts())
    updated_at: datetime = Field(sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts(True))


class MallItemStock(SQLModel, table=True):
    """One slot of a limited item's stock: the item's units left are the sum of its slots."""

    __tablename__ = "mall_item_stock"
    __table_args__ = (sa.CheckConstraint("remaining >= 0", name="remaining_not_negative"),)

    item_id: uuid.UUID = Field(primary_key=True)
    slot: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True, autoincrement=False))
    remaining: int


class MallOrder(SQLModel, table=True):
    """One purchase: its own price and terms (an item's later edits never touch it) and its voucher.

    The voucher code is never stored in clear: ``voucher_digest`` (SHA-256 of the normalised code,
    unique) finds it at the counter; ``voucher_sealed`` is the code XOR a pad derived from the
    platform secret and the order id, so the buyer can see it again but a database dump cannot redeem.
    """

    __tablename__ = "mall_orders"
    __table_args__ = (
        sa.Index("ix_mall_orders_user_created", "user_id", "created_at", "id"),
        sa.Index("ix_mall_orders_merchant_created", "merchant_id", "created_at", "id"),
        sa.Index(
            "ix_mall_orders_merchant_closed",
            "merchant_id",
            "closed_at",
            postgresql_where=sa.text("closed_at IS NOT NULL"),
        ),
        sa.Index(
            "ix_mall_orders_issued_expiry",
            "voucher_expires_at",
            postgresql_where=sa.text("status = 'issued'"),
        ),
        sa.Index(
            "ix_mall_orders_refunded", "refunded_at", postgresql_where=sa.text("refunded_at IS NOT NULL")
        ),
        sa.Index("ix_mall_orders_created_brin", "created_at", postgresql_using="brin"),
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("points > 0", name="points_positive"),
        sa.CheckConstraint("status IN ('issued', 'redeemed', 'cancelled', 'expired')", name="status_known"),
        sa.CheckConstraint("refunded_points IN (0, points)", name="refund_all_or_nothing"),
    )

    id: uuid.UUID = Field(primary_key=True)
    item_id: uuid.UUID
    merchant_id: uuid.UUID
    user_id: uuid.UUID
    operator_id: uuid.UUID | None = Field(
        default=None, description="The operator the buyer's token came through"
    )
    title: str = Field(max_length=200)
    quantity: int
    unit_price: int = Field(sa_column=_big())
    points: int = Field(sa_column=_big())
    status: str = Field(max_length=10)
    expiry_policy: str = Field(max_length=10)
    voucher_digest: bytes = Field(sa_column=sa.Column(sa.LargeBinary(32), nullable=False, unique=True))
    voucher_sealed: bytes = Field(sa_column=sa.Column(sa.LargeBinary(10), nullable=False))
    voucher_expires_at: datetime = Field(sa_column=_ts())
    spend_entry_id: int = Field(sa_column=_big())
    refunded_points: int = Field(default=0, sa_column=_big(server_default="0"))
    created_at: datetime = Field(sa_column=_ts())
    redeemed_at: datetime | None = Field(default=None, sa_column=_ts(True))
    cancelled_at: datetime | None = Field(default=None, sa_column=_ts(True))
    expired_at: datetime | None = Field(default=None, sa_column=_ts(True))
    closed_at: datetime | None = Field(default=None, sa_column=_ts(True), description="When it left 'issued'")
    refunded_at: datetime | None = Field(default=None, sa_column=_ts(True))


class MallPurchase(SQLModel, table=True):
    """How many of an item a person holds (orders not cancelled or refunded): the per-person limit."""

    __tablename__ = "mall_purchases"
    __table_args__ = (sa.CheckConstraint("quantity >= 0", name="quantity_not_negative"),)

    item_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    quantity: int = Field(default=0)


class OperatorRedemption(SQLModel, table=True):
    """Points a person used in an operator's own mall, spent and cancelled (注销) here (SZ 23)."""

    __tablename__ = "operator_redemptions"
    __table_args__ = (
        sa.UniqueConstraint("operator_id", "operator_order_id"),
        sa.Index("ix_operator_redemptions_operator_created", "operator_id", "created_at", "id"),
        sa.Index(
            "ix_operator_redemptions_reversed",
            "reversed_at",
            postgresql_where=sa.text("reversed_at IS NOT NULL"),
        ),
        sa.Index("ix_operator_redemptions_created_brin", "created_at", postgresql_using="brin"),
        sa.CheckConstraint("points > 0", name="points_positive"),
        sa.CheckConstraint("status IN ('completed', 'reversed')", name="status_known"),
    )

    id: uuid.UUID = Field(primary_key=True)
    operator_id: uuid.UUID
    operator_order_id: str = Field(max_length=100)
    user_id: uuid.UUID
    points: int = Field(sa_column=_big())
    description: str = Field(default="", max_length=500)
    status: str = Field(max_length=10)
    spend_entry_id: int | None = Field(default=None, sa_column=_big(True))
    created_at: datetime = Field(sa_column=_ts())
    reversed_at: datetime | None = Field(default=None, sa_column=_ts(True))
