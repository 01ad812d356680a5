"""events without a foreign key: an order's events no longer lock their organisations' rows

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 11:20:00.000000
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# webhook_events is written at the rate of orders (each order's order.created events, in the order's statement).
# Its foreign key to organizations checked every event: a look-up of the organisation and a FOR KEY SHARE lock of
# its row, which concurrent orders of one merchant share (a multixact for each new sharer). Like the ledger's hot
# tables (app/points/models.py), it now carries none: an event's organisation is the item's merchant (itself a
# foreign key of mall_items) or the organisation that made the change, taken from rows that exist, and
# organisations are never deleted.


def upgrade() -> None:
    op.drop_constraint("fk_webhook_events_org_id_organizations", "webhook_events", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "fk_webhook_events_org_id_organizations", "webhook_events", "organizations", ["org_id"], ["id"]
    )
