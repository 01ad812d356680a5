"""Time-ordered identifiers (app.core.ids): version 7, increasing, unguessable."""

import time
import uuid

from app.core import ids


def test_ids_are_version_7_and_strictly_increasing():
    made = [ids.uuid7() for _ in range(2000)]
    assert made == sorted(made)
    assert len(set(made)) == 2000
    assert {i.version for i in made} == {7}
    assert {i.variant for i in made} == {uuid.RFC_4122}


def test_an_id_begins_with_the_time_it_was_made_in_milliseconds():
    before = time.time_ns() // 1_000_000
    made = ids.uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after + 1  # +1: ids made faster than one a millisecond count on


def test_ids_made_in_the_same_millisecond_differ_in_their_random_bits():
    made = [ids.uuid7() for _ in range(200)]
    random_bits = {i.int & ((1 << 62) - 1) for i in made}
    assert len(random_bits) == 200
