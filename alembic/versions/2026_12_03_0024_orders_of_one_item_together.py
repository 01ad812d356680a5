"""orders of one item together: an order sent in a group never waits for a stock slot, it answers 'busy'

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 03:00:00.000000
"""

from alembic import op

from app.core import migrate

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# Orders of one item may now share a group's statement (app.mall.service._kept_apart). An order alone may wait
# for a stock slot when every free one is held: it holds no other slot and no audit chain, and waits only for a
# higher slot than any it holds, so no cycle forms. In a group that no longer holds: an earlier order of the same
# statement may hold a slot of the item or an audit chain's head another group needs, while this one would wait
# for a slot that group holds. So mall_place_order takes ``p_wait``: false (a group's orders), an order that finds
# no free slot without waiting answers 'busy' instead of waiting, undone like any refusal (its stock is not
# summed: the order is not refused, only not placed yet), and the service sends it again alone, where it may
# wait as before. mall_order_request passes ``p_wait`` on. Both functions are migration 0021's and 0019's with
# these changes alone (made below from their text, each checked to apply once).

PLACE_ORDER_ARGS = "uuid, uuid, uuid, int, timestamptz, uuid, bytea, bytea, int"
REQUEST_ARGS = (
    "bigint, text, text, text, timestamptz, uuid, uuid, uuid, int, timestamptz, uuid, bytea, bytea, int,"
    " uuid[], uuid[], text[], text[], text[], text[], int, text, text"
)


def place_order() -> str:
    return migrate.changed(
        migrate.earlier("0021").PLACE_ORDER,
        ("CREATE OR REPLACE FUNCTION", "CREATE FUNCTION"),
        ("p_first_slot int,\n  OUT outcome", "p_first_slot int, p_wait boolean,\n  OUT outcome"),
        (
            "      IF v_slot IS NULL THEN\n        -- every wait",
            "      IF v_slot IS NULL AND NOT p_wait THEN\n"
            "        v_refusal := 'busy';  -- in a group: sent again alone, where it may wait\n"
            "        EXIT attempt;\n"
            "      END IF;\n"
            "      IF v_slot IS NULL THEN\n        -- every wait",
        ),
        ("  IF v_limited THEN\n    SELECT coalesce(sum", "  IF v_limited AND v_refusal <> 'busy' THEN\n    SELECT coalesce(sum"),
    )


def order_request() -> str:
    return migrate.changed(
        migrate.earlier("0019").REQUEST,
        ("p_audit_chain int, p_audit text, p_body text\n)", "p_audit_chain int, p_audit text, p_body text, p_wait boolean\n)"),
        ("p_sealed, p_first_slot);", "p_sealed, p_first_slot, p_wait);"),
    )


def upgrade() -> None:
    op.execute(f"DROP FUNCTION mall_order_request({REQUEST_ARGS})")
    op.execute(f"DROP FUNCTION mall_place_order({PLACE_ORDER_ARGS})")
    op.execute(place_order())
    op.execute(order_request())


def downgrade() -> None:
    op.execute(f"DROP FUNCTION mall_order_request({REQUEST_ARGS}, boolean)")
    op.execute(f"DROP FUNCTION mall_place_order({PLACE_ORDER_ARGS}, boolean)")
    op.execute(migrate.earlier("0021").PLACE_ORDER.replace("CREATE OR REPLACE", "CREATE", 1))
    op.execute(migrate.earlier("0019").REQUEST)
