"""Demo data of the mall: an approved merchant with its admin login and three items on sale.

Everything goes through the services (the same rules as the HTTP routes). Loading twice adds nothing.
"""

from sqlalchemy.ext.asyncio import AsyncSession

from app.demo import approved_org
from app.mall import service
from app.mall.schemas import ItemCreate
from app.organizations import service as org_service

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
        session, kind="merchant", name="Green Bean Rewards (demo merchant)", credit_code=MERCHANT_CREDIT_CODE,
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
    return lines
