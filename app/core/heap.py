"""The garbage collector's share of a request, kept small.

CPython frees most objects when their last reference goes; its cyclic collector runs besides, every 700
container allocations, and now and then walks every object the process holds. A started process holds about
250,000 (modules, routes, models, compiled statements) that live as long as it does, so each full walk took
170–250 ms, and a 1,000-record batch, which allocates tens of thousands of objects, paid about 57 ms of
collection on its ~300 ms; after :func:`settle`, 8 ms (``gc.callbacks`` timing 40 of ``bench/ingest.py``'s
batches sent one after another).
"""

import gc

YOUNGEST_THRESHOLD = 10_000
"""Container allocations between two collections of the youngest generation (CPython's default: 700). Most of a
request's objects are freed by reference counting before a collection sees them; cyclic garbage waits for at
most this many allocations."""


def settle() -> None:
    """Once the process has started: collect what startup left, move every object still alive to the permanent
    generation (no collection walks it again), and collect the youngest generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNGEST_THRESHOLD, middle, oldest)
