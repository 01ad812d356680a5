"""The started process's objects set aside from the cyclic collector's walks (``app.core.heap``)."""

import gc
import weakref

from app.core import heap


class Node:
    def __init__(self):
        self.other = self


def _walked(obj) -> bool:
    """Whether a collection of any generation would look at ``obj``."""
    return any(o is obj for o in gc.get_objects())


async def test_a_started_app_has_settled_its_heap(app):
    # the fixture's app ran its lifespan: the app and its routes were alive at the end of startup
    assert not _walked(app)
    assert not _walked(app.router)
    assert gc.get_freeze_count() > 100_000  # the process's modules, routes and models
    assert gc.get_threshold()[0] == heap.YOUNGEST_THRESHOLD == 10_000
    assert gc.isenabled()


def test_settle_freezes_what_lives_and_keeps_collecting_what_comes_after():
    kept = [["alive before"]]
    _, middle, oldest = gc.get_threshold()
    heap.settle()
    assert not _walked(kept)
    assert gc.get_threshold() == (10_000, middle, oldest)

    later = [["alive after"]]
    assert _walked(later)
    cycle = Node()  # garbage only the cyclic collector can free
    gone = weakref.ref(cycle)
    del cycle
    assert gone() is not None
    gc.collect()
    assert gone() is None
