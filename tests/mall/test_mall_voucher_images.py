"""The voucher code of a person's own order as a QR image (SVG and PNG) for apps to show at the counter."""

import re
import uuid

import sqlalchemy as sa

from app.core import db
from app.mall import vouchers
from tests.factories_mall import make_item, make_merchant, people, place


async def ordered(client, world, points: int = 100):
    merchant = await make_merchant(client, world.authority)
    item = await make_item(client, merchant, points_price=50, stock=None)
    buyer, other = await people(client, world.operator, world.btype, 2, points=points)
    r = await place(client, buyer, item["id"])
    assert r.status_code == 201, r.text
    return buyer, other, r.json()


class TestVoucherImages:
    async def test_the_owner_gets_the_code_as_svg_and_png_never_cached(self, client, world):
        buyer, _, order = await ordered(client, world)
        code = order["voucher"]["code"]
        svg = await client.get(f"/v1/me/orders/{order['id']}/voucher.svg", headers=buyer.headers)
        assert svg.status_code == 200
        assert svg.headers["content-type"] == "image/svg+xml"
        assert svg.headers["cache-control"] == "no-store"
        assert svg.content == vouchers.qr_image(code, "svg")
        assert re.match(rb'<svg xmlns="http://www.w3.org/2000/svg" width="\d+" height="\d+"', svg.content)
        png = await client.get(f"/v1/me/orders/{order['id']}/voucher.png", headers=buyer.headers)
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        assert png.headers["cache-control"] == "no-store"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
        assert png.content == vouchers.qr_image(code, "png")
        assert code.encode() not in svg.content  # the image, not the code in clear text

    async def test_a_voucher_the_till_would_refuse_has_no_image(self, client, world):
        """Used at the counter, cancelled, or past its expiry before the job closed it: the till's own errors."""
        merchant = await make_merchant(client, world.authority)
        item = await make_item(client, merchant, points_price=50, stock=None)
        [buyer] = await people(client, world.operator, world.btype, 1, points=150)
        used, cancelled, expired = [(await place(client, buyer, item["id"])).json() for _ in range(3)]
        r = await client.post(f"/v1/me/orders/{cancelled['id']}/cancel", headers=buyer.headers)
        assert r.status_code == 200
        async with db.session_scope() as session:  # its time ran out a minute ago; the job has not run since
            await session.execute(
                sa.text(
                    "UPDATE mall_orders SET voucher_expires_at = now() - interval '1 minute' WHERE id = :id"
                ),
                {"id": uuid.UUID(expired["id"])},
            )
        for kind in ("svg", "png"):  # an issued voucher's image, until the counter takes it
            r = await client.get(f"/v1/me/orders/{used['id']}/voucher.{kind}", headers=buyer.headers)
            assert r.status_code == 200
        r = await client.post(
            f"/v1/merchant/vouchers/{used['voucher']['code']}/redeem", headers=merchant.headers
        )
        assert r.status_code == 200, r.text
        refused = {"voucher_redeemed": used, "voucher_cancelled": cancelled, "voucher_expired": expired}
        for code, order in refused.items():
            for kind in ("svg", "png"):
                r = await client.get(f"/v1/me/orders/{order['id']}/voucher.{kind}", headers=buyer.headers)
                assert (r.status_code, r.headers["content-type"], r.json()["code"]) == (
                    409,
                    "application/problem+json",
                    code,
                )

    async def test_another_persons_order_is_not_found(self, client, world):
        _, other, order = await ordered(client, world)
        for kind in ("svg", "png"):
            r = await client.get(f"/v1/me/orders/{order['id']}/voucher.{kind}", headers=other.headers)
            assert r.status_code == 404
            assert r.json()["code"] == "order_not_found"

    async def test_a_merchant_token_is_refused(self, client, world):
        _, _, order = await ordered(client, world)
        merchant = await make_merchant(client, world.authority)
        r = await client.get(f"/v1/me/orders/{order['id']}/voucher.svg", headers=merchant.headers)
        assert r.status_code == 403
