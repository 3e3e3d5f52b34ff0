"""SQL run outside any transaction (CREATE/DROP DATABASE), as tests and benchmarks set up PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


async def run_autocommit(url: str, *statements: str) -> None:
    """Run `statements` in order on `url`, each committed on its own."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()
