"""Demo data of this domain: the shipped catalogue, published."""

from sqlalchemy.ext.asyncio import AsyncSession

from app.methodologies import catalogue


async def load(session: AsyncSession) -> list[str]:
    result = await catalogue.load(session)
    lines = [f"catalogue: {len(result.created)} versions published, {len(result.existing)} already there"]
    lines += [f"  + {label}" for label in result.created]
    lines.append("read it: GET /v1/methodologies · GET /v1/exchange-rules/current")
    return lines
