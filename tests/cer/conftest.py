from datetime import timedelta

import pytest

from app.core import clock


@pytest.fixture(autouse=True)
def clock_back():
    """Tests move the clock past publicity periods; put it back after each."""
    yield
    clock.set_offset(timedelta(0))
