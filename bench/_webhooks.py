"""``--webhooks`` of the benchmarks: active subscriptions to a local sink, interleaved runs with and without.

The subscriptions are created through the API by the organisations' admins and paused for the runs
without, so both kinds of run share one server, one database and the same moment of the machine. The
benchmark server runs no scheduler: what is measured is what subscriptions add to the request path (the
outbox's event and delivery rows written in the request's transaction), not the posting itself.
"""

import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Sink:
    """An HTTP server on loopback that answers 200 to every POST (the subscriptions' endpoint)."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sink"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def subscribe(client: httpx.AsyncClient, admin: dict[str, str], url: str, types: list[str]) -> str:
    """An active subscription of the admin's organisation to ``types``; its id."""
    r = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": url, "event_types": types, "description": "bench"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def set_active(
    client: httpx.AsyncClient, subscriptions: list[tuple[dict[str, str], str]], on: bool
) -> None:
    for admin, sid in subscriptions:
        r = await client.post(
            f"/v1/webhooks/subscriptions/{sid}/{'resume' if on else 'pause'}", headers=admin
        )
        assert r.status_code == 200, r.text


def modes(runs: int, webhooks: bool) -> list[bool]:
    """Without, with, without, with… (``runs`` of each) or ``runs`` without."""
    return [False, True] * runs if webhooks else [False] * runs


def compare(runs: list[dict], with_webhooks: list[bool], metrics: dict[str, tuple[str, str]]) -> dict:
    """Medians with and without subscriptions and their ratios; ``metrics``: name → (the run's rate, the
    same run's baseline rate) — the ratio of ratios cancels what the noisy machine did meanwhile."""
    out: dict = {"without": {}, "with": {}, "ratio_with_to_without": {}}
    for name, (rate, base) in metrics.items():
        for label, on in (("without", False), ("with", True)):
            chosen = [r for r, m in zip(runs, with_webhooks, strict=True) if m == on]
            out[label][name] = round(statistics.median(_get(r, rate) for r in chosen), 1)
            out[label][name + "_to_baseline"] = round(
                statistics.median(_get(r, rate) / _get(r, base) for r in chosen), 4
            )
        out["ratio_with_to_without"][name] = round(
            out["with"][name + "_to_baseline"] / out["without"][name + "_to_baseline"], 4
        )
    out["slowdown_within_5_percent"] = all(v >= 0.95 for v in out["ratio_with_to_without"].values())
    return out


def _get(run: dict, path: str) -> float:
    value: object = run
    for key in path.split("."):
        value = value[key]  # type: ignore[index]
    return float(value)  # type: ignore[arg-type]
