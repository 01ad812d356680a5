"""A webhook receiver for the carbon-points platform, on the standard library only.

    CARBON_WEBHOOK_SECRETS=whsec_new,whsec_old python operators/examples/webhook_receiver.py 8088

It verifies each delivery's ``Carbon-Signature`` with the SDK (every secret listed is accepted: during a
rotation list the new one and the old one), answers 400 to anything that does not verify, and handles an
event once even when the platform delivers it again (delivery is at least once: de-duplicate on the id).
A real receiver keeps the seen ids in its database, in the same transaction as the work the event causes,
and answers 2xx quickly (within a few seconds) — slow work goes to a queue.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from carbon_operator import webhooks

SECRETS = [s for s in os.environ.get("CARBON_WEBHOOK_SECRETS", "").split(",") if s]
MAX_BODY = 1_000_000


class Seen:
    """The ids already handled (in memory here; keep them in your database)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        with self.lock:
            if event_id in self.ids:
                return False
            self.ids.add(event_id)
            return True


def handle(event: webhooks.Event) -> None:
    """Your work: switch on the type (``event.known`` is False for a type added after this SDK)."""
    if event.type == "entrustment.withdrawn":
        print("stop submitting for", event.data.get("external_user_id"))
    else:
        print("event", event.type, event.subject.type, event.subject.id, json.dumps(event.data))


def make_handler(secrets: list[str], seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._answer(413, "too large")
            body = self.rfile.read(length)  # the exact bytes: verify before parsing
            try:
                event = webhooks.verify(body, self.headers.get(webhooks.SIGNATURE_HEADER, ""), secrets)
            except webhooks.WebhookVerificationError as exc:
                return self._answer(400, exc.code)
            if seen.first_time(event.id):
                handle(event)
                return self._answer(200, "handled")
            return self._answer(200, "already handled")

        def _answer(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def serve(port: int, secrets: list[str]) -> ThreadingHTTPServer:
    return ThreadingHTTPServer(("127.0.0.1", port), make_handler(secrets, Seen()))


if __name__ == "__main__":
    if not SECRETS:
        sys.exit(
            "set CARBON_WEBHOOK_SECRETS to the subscription's secret (comma-separated during a rotation)"
        )
    server = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8088, SECRETS)
    print(f"listening on http://127.0.0.1:{server.server_port}/")
    server.serve_forever()
