"""The panel draw: a pure, deterministic function anyone can re-run from the published record.

Algorithm ``hmac-sha256-rank/v1``:

1. ``candidates`` are the eligible expert ids (canonical lowercase UUID strings), de-duplicated
   and sorted; the platform publishes this list with the seed (``GET /v1/reviews/{id}/draw``).
2. Each candidate gets the rank key ``HMAC-SHA256(key=seed as UTF-8, message=candidate id as
   UTF-8)``, in lowercase hex.
3. Candidates are ordered by (rank key, id); the first ``n`` are the panel, in that order.

Re-running it needs nothing but the standard library::

    python -c "import hmac,hashlib,sys; s=sys.argv[1]; c=sys.argv[2:]; \\
      print(sorted(c, key=lambda x: (hmac.new(s.encode(), x.encode(), hashlib.sha256).hexdigest(), x)))" \\
      SEED ID1 ID2 ...

The seed is chosen (or generated with ``secrets.token_hex``) before the candidates are known to
the public and is recorded with them, so the platform cannot steer the outcome afterwards
without the record showing it.
"""

import hashlib
import hmac
from collections.abc import Iterable

ALGORITHM = "hmac-sha256-rank/v1"


def rank_key(seed: str, candidate: str) -> str:
    return hmac.new(seed.encode(), candidate.encode(), hashlib.sha256).hexdigest()


def draw(seed: str, candidates: Iterable[str], n: int) -> list[str]:
    """The first ``n`` candidates by HMAC-SHA256 rank; raises ValueError when there are fewer."""
    pool = sorted(set(candidates))
    if n < 0 or n > len(pool):
        raise ValueError(f"cannot draw {n} of {len(pool)} candidates")
    return sorted(pool, key=lambda c: (rank_key(seed, c), c))[:n]
