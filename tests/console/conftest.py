from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from console_support import City, feed_city

from desk_support import Desk, running_desk


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    async with running_desk(database_url) as running:
        yield running


@pytest.fixture
async def city(desk: Desk) -> City:
    return await feed_city(desk)
