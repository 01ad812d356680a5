"""Alembic environment: async (asyncpg), the app's metadata and naming convention."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import db
from app.core.config import get_settings
from app.core.embedded import ensure_servers
from app.models import metadata

config = context.config


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    settings = get_settings()
    return ensure_servers(settings.database_url, "unused", settings.data_dir).database_url


def do_run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(db.asyncpg_url(database_url()))
    async with engine.connect() as connection:
        await connection.run_sync(do_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=db.asyncpg_url(database_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
