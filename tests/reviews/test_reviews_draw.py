"""The draw is a pure function: same seed and candidates, same panel; documented, re-derivable."""

import hashlib
import hmac
import uuid

import pytest

from app.reviews.draw import ALGORITHM, draw, rank_key

CANDIDATES = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(12)]


class TestDraw:
    def test_it_is_deterministic(self):
        assert draw("seed-one", CANDIDATES, 5) == draw("seed-one", CANDIDATES, 5)

    def test_the_input_order_and_duplicates_do_not_matter(self):
        shuffled = list(reversed(CANDIDATES)) + CANDIDATES[:3]
        assert draw("seed-one", shuffled, 5) == draw("seed-one", CANDIDATES, 5)

    def test_it_ranks_by_hmac_sha256_of_the_id_under_the_seed(self):
        expected = sorted(
            CANDIDATES, key=lambda c: hmac.new(b"abc123", c.encode(), hashlib.sha256).hexdigest()
        )[:4]
        assert draw("abc123", CANDIDATES, 4) == expected
        assert (
            rank_key("abc123", CANDIDATES[0])
            == hmac.new(b"abc123", CANDIDATES[0].encode(), hashlib.sha256).hexdigest()
        )
        assert ALGORITHM == "hmac-sha256-rank/v1"

    def test_a_larger_panel_extends_a_smaller_one(self):
        assert draw("s", CANDIDATES, 6)[:3] == draw("s", CANDIDATES, 3)

    def test_other_seeds_give_other_panels(self):
        panels = {tuple(draw(f"seed-{i}", CANDIDATES, 3)) for i in range(20)}
        assert len(panels) == 20

    def test_it_cannot_draw_more_than_there_are(self):
        with pytest.raises(ValueError):
            draw("s", CANDIDATES[:2], 3)
        assert draw("s", CANDIDATES[:2], 2) == sorted(CANDIDATES[:2], key=lambda c: rank_key("s", c))
