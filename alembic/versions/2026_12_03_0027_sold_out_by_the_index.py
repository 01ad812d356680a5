"""an item's sold-out check read by its stock slots' index, whatever the statistics say

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 15:20:00.000000
"""

from alembic import op

from app.core import migrate

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# mall_place_order reads the item with whether any of its stock slots has a unit left (migration 0021): an
# ``EXISTS`` over ``mall_item_stock``. PostgreSQL plans an ``EXISTS`` for its first row and assumes the rows it looks
# for are spread evenly through the table: with statistics of a table of a few thousand slots (a mall of a few
# dozen items, as a city starts with) it chose a sequential scan of every item's slots, and a new item's slots are
# at the end of the table, so each order read all of them (a hot item's attempt 1.35× the PostgreSQL CPU with
# statistics than without, on a mall of 21 items). Asked as the first slot with a unit left in slot order
# (``ORDER BY s.slot LIMIT 1``, which PostgreSQL keeps in a scalar sub-select where it drops it from an ``EXISTS``),
# it is read by the slots' primary key ``(item_id, slot)`` from the item's first slot, with or without statistics
# and however many items the mall has. Otherwise mall_place_order is migration 0024's (made below from its text).

PLACE_ORDER_ARGS = "uuid, uuid, uuid, int, timestamptz, uuid, bytea, bytea, int, boolean"

OLD_CHECK = "i.stock_limited AND NOT EXISTS (SELECT FROM mall_item_stock s WHERE s.item_id = i.id AND s.remaining > 0)"
NEW_CHECK = (
    "i.stock_limited AND (SELECT s.slot FROM mall_item_stock s WHERE s.item_id = i.id AND s.remaining > 0\n"
    "                            ORDER BY s.slot LIMIT 1) IS NULL"
)


def place_order() -> str:
    return migrate.changed(
        migrate.earlier("0024").place_order(),
        ("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
        (OLD_CHECK, NEW_CHECK),
    )


def upgrade() -> None:
    op.execute(place_order())


def downgrade() -> None:
    op.execute(
        migrate.earlier("0024").place_order().replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    )
