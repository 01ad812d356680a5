"""Demo data of the mall: an approved merchant with its admin login and three items on sale, and
(when the points demo has enrolled its people) two orders: one voucher already used at the counter,
one waiting for the till (its code is printed).

Everything goes through the services (the same rules as the HTTP routes). Loading twice adds nothing.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.demo import approved_org
from app.mall import service
from app.mall.schemas import ItemCreate
from app.organizations import service as org_service
from app.points.exceptions import InsufficientPoints
from app.users import service as users_service
from app.users.exceptions import NotEntrusted

DEMO_OPERATOR = "demo-operator"  # made by app/points/demo.py, which loads first
BUYERS = ("demo-bob", "demo-alice")  # Bob's voucher is used at the counter; Alice's waits for the till

MERCHANT = ("mall-demo", "mall-demo-pw")
MERCHANT_CREDIT_CODE = "91440300MA5MALL01X"
ITEMS = [
    ItemCreate(
        title="Americano in your own cup",
        description="One Americano at Green Bean Café; bring your own cup.",
        images=["https://example.org/mall/americano.png"],
        points_price=50,
        stock=None,
        per_user_limit=None,
        voucher_valid_days=30,
        expiry_policy="refund",
    ),
    ItemCreate(
        title="Shenzhen Metro day pass",
        description="Unlimited metro rides for one day.",
        images=["https://example.org/mall/metro-pass.png"],
        points_price=150,
        stock=500,
        per_user_limit=2,
        voucher_valid_days=14,
        expiry_policy="refund",
    ),
    ItemCreate(
        title="Recycled-canvas tote bag",
        description="Collect it at the service desk of any Green Bean Café.",
        images=["https://example.org/mall/tote.png"],
        points_price=300,
        stock=100,
        per_user_limit=1,
        voucher_valid_days=60,
        expiry_policy="forfeit",
    ),
]


async def load(session: AsyncSession) -> list[str]:
    existing = await org_service.staff_org_id(session, MERCHANT[0])  # the demo merchant's admin login
    if existing is not None:
        return [
            f"mall: demo merchant already there — login {MERCHANT[0]} / {MERCHANT[1]}; GET /v1/mall/items"
            f"?merchant_id={existing}"
        ]
    org, merchant = await approved_org(
        session,
        kind="merchant",
        name="Green Bean Rewards (demo merchant)",
        credit_code=MERCHANT_CREDIT_CODE,
        admin=MERCHANT,
    )
    lines = [f"merchant login: {MERCHANT[0]} / {MERCHANT[1]} (merchant id {org.id})"]
    for data in ITEMS:
        item = await service.create_item(session, merchant, data)
        stock = "unlimited" if item.stock is None else f"{item.stock} in stock"
        lines.append(f"  item {item.id}: {item.title} — {item.points_price} points, {stock}")
    lines.append(
        "order: POST /v1/me/orders {item_id, quantity} with a user token and an Idempotency-Key;"
        " redeem: POST /v1/merchant/vouchers/{code}/redeem with the merchant's token"
    )
    lines += await _orders(session, merchant)
    return lines


async def _orders(session: AsyncSession, merchant: Principal) -> list[str]:
    """An Americano for Bob, used at the counter, and one for Alice, still to be used."""
    operator_id = await org_service.staff_org_id(session, DEMO_OPERATOR)
    if operator_id is None:
        return []
    coffee = next(
        i
        for i in (await service.list_items(session, merchant=merchant, limit=10, cursor=None))["items"]
        if i.title == ITEMS[0].title
    )
    lines = []
    for external_id in BUYERS:
        try:
            user_id = await users_service.entrusted_user(session, operator_id, external_id)
            buyer = Principal("user", "user", user_id, operator_id)
            order = (await service.place_order(session, buyer, coffee.id, 1)).order
        except (NotEntrusted, InsufficientPoints):
            continue
        if external_id == BUYERS[0]:
            await service.redeem_voucher(session, merchant, order.voucher.code)
        else:
            lines.append(
                f"  {external_id} ordered '{coffee.title}': voucher {order.voucher.code}, not used yet — redeem it at "
                f"the till: sign in at /merchant as {MERCHANT[0]} / {MERCHANT[1]}"
            )
    return lines
