"""The client's address behind reverse proxies: ``X-Forwarded-For`` and ``-Proto``, from trusted proxies only.

The address is an anonymous caller's rate-limit identity, so whoever may set it may rotate it.
Only a peer listed in ``CARBON_TRUSTED_PROXIES`` is believed. Each proxy appends the address it
saw to ``X-Forwarded-For``; reading from the right, the first address that is not a trusted proxy
is the client (what lies left of it the client wrote itself). When every hop is trusted the
left-most is the client. ``Forwarded`` (RFC 7239) is not read. The app does this itself, so
uvicorn runs without proxy headers (``carbon-points serve`` starts it so).
"""

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=16)
def networks(setting: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 10.1.0.0/16"`` as networks; ``ValueError`` for anything but addresses and networks."""
    return tuple(ipaddress.ip_network(part.strip()) for part in setting.split(",") if part.strip())


def _address(text: str) -> Address | None:
    """An address as proxies write it: bare, ``v4:port`` or ``[v6]:port``; ``None`` if it is none."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: Address | None, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in net for net in trusted)


def resolve(
    peer: str | None, forwarded_for: list[bytes], forwarded_proto: bytes | None, trusted: tuple[Network, ...]
) -> tuple[str | None, str | None]:
    """The client address and scheme the headers give, or ``None`` for either that stays as it is.

    ``forwarded_for`` holds every ``X-Forwarded-For`` header of the request (one list in order).
    A hop that is no address (``unknown``, garbage) ends the walk: the last trusted hop stands.
    """
    if (
        not trusted
        or (not forwarded_for and forwarded_proto is None)
        or not _trusted(_address(peer or ""), trusted)
    ):
        return None, None
    hops = [h for value in forwarded_for for h in value.decode("latin-1").split(",") if h.strip()]
    client, index = None, len(hops)
    for i in range(len(hops) - 1, -1, -1):
        address = _address(hops[i])
        if address is None:
            break
        client, index = str(address), i
        if not _trusted(address, trusted):
            break
    scheme = None
    if forwarded_proto is not None:
        protos = [p.strip().lower() for p in forwarded_proto.decode("latin-1").split(",")]
        proto = protos[index] if len(protos) == len(hops) and index < len(hops) else protos[-1]
        scheme = proto if proto in ("http", "https") else None
    return client, scheme
