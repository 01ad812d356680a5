"""What one process of a server proved, known to its other processes: digests in shared memory.

A signature verification (ES256: ~50 µs of OpenSSL) proves something about exact bytes that never changes. A
server runs several processes (``carbon-points serve --workers N``), and a request goes to any of them: without
sharing, a person's token is verified again by each process their app happens to reach. ``serve`` makes one
table for its workers (:func:`shared_by_workers`); each process maps it (:func:`table`) and a proof found there is
not computed again. A process started any other way keeps a table of its own.

The table is a set of 32-byte SHA-256 digests in ``BUCKETS`` buckets of ``WAYS`` slots, written without a lock:
a digest is stored whole by one copy, and a slot read while another process writes it holds either digest or a
mix of the two, which matches no digest anyone asks for (that would take a second preimage of SHA-256). So a hit
means exactly these bytes were proved here; what a miss costs is the verification. A full bucket gives up one of
its slots to a new digest; the file is the server user's alone (``0600``), removed when ``serve`` ends (a killed
server's by the next ``serve`` on the machine).
"""

import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUCKETS = 1 << 16
WAYS = 4
DIGEST = 32
SIZE = BUCKETS * WAYS * DIGEST  # 8 MiB: 262,144 digests
EMPTY = bytes(DIGEST)  # an unused slot (no SHA-256 digest is all zeros in practice; it is refused outright)
ENV = "CARBON_SHARED_PROOFS"
"""The table's file, set by ``serve`` for the workers it starts (not a setting: nothing else should set it)."""
PREFIX = "carbon-proofs-"  # the file's name: then the serving process's id (see _remove_orphans)


def digest(*parts: bytes) -> bytes:
    """What a proof is known by: the SHA-256 of its parts, each length-prefixed (so no two lists collide)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


class Proofs:
    """A set of digests in ``memory`` (``SIZE`` bytes), shared by every process that maps the same file."""

    def __init__(self, memory: mmap.mmap):
        self._memory = memory

    @staticmethod
    def _slots(d: bytes) -> range:
        """Where ``d`` may be held: its bucket's slots (``ValueError`` for what no proof is)."""
        if len(d) != DIGEST or d == EMPTY:
            raise ValueError("a proof is a 32-byte digest")
        start = int.from_bytes(d[:8], "big") % BUCKETS * WAYS * DIGEST
        return range(start, start + WAYS * DIGEST, DIGEST)

    def __contains__(self, d: bytes) -> bool:
        try:
            slots = self._slots(d)
        except ValueError:
            return False
        return any(self._memory[at : at + DIGEST] == d for at in slots)

    def add(self, d: bytes) -> None:
        memory, slots = self._memory, self._slots(d)
        for at in slots:
            held = memory[at : at + DIGEST]
            if held == d:
                return
            if held == EMPTY:
                memory[at : at + DIGEST] = d
                return
        at = slots[d[8] % WAYS]  # full: a slot chosen by the digest itself, so processes agree
        memory[at : at + DIGEST] = d


def _remove_orphans(folder: Path) -> None:
    """Tables of servers that were killed (no ``finally`` ran): this user's, whose server process is gone."""
    for path in folder.glob(f"{PREFIX}*"):
        try:
            pid = int(path.name.removeprefix(PREFIX).split("-")[0])
            if path.stat().st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, OSError):  # not ours to judge (another name, another user's process)
            continue


def _private() -> Proofs:
    return Proofs(mmap.mmap(-1, SIZE))


def _mapped(path: str) -> Proofs | None:
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_size != SIZE or info.st_uid != os.getuid() or info.st_mode & 0o077:
            return None  # not a table this server made: keep one of our own
        return Proofs(mmap.mmap(fd, SIZE))
    finally:
        os.close(fd)


_table: Proofs | None = None


def table() -> Proofs:
    """This process's table: the workers' shared one when ``serve`` made one, else its own."""
    global _table
    if _table is None:
        path = os.environ.get(ENV)
        _table = (_mapped(path) if path else None) or _private()
    return _table


@contextmanager
def shared_by_workers(workers: int) -> Iterator[Path | None]:
    """For ``serve``: with more than one worker, a table file for them all (named in ``ENV``), removed after."""
    if workers <= 1:
        yield None
        return
    folder = Path(
        "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    )
    _remove_orphans(folder)
    fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", dir=folder)  # 0600, created new
    path = Path(name)
    try:
        try:
            os.ftruncate(fd, SIZE)
        finally:
            os.close(fd)
        previous = os.environ.get(ENV)
        os.environ[ENV] = name
        try:
            yield path
        finally:
            if previous is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = previous
    finally:
        path.unlink(missing_ok=True)
