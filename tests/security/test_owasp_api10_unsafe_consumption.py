"""OWASP API10:2023 Unsafe Consumption of APIs: not applicable, and why.

API10 is about a platform trusting data it fetches from third-party APIs. This platform calls no
third-party API: operators push signed batches to it, the exchange's closing prices are recorded
by the authority by hand, evidence and image URLs are stored, never fetched (API7), and no module
of ``app/`` imports an HTTP client (``test_owasp_api7_ssrf.test_the_app_has_no_http_client``).
What it does consume from other systems, operators' batches, is treated as untrusted input:
the detached JWS over the exact bytes is verified against the operator's registered key, the
batch is size-limited, and every record is validated on its own (``tests/points``, API3, API4).
The one check that guards this property is below: the platform's dependencies hold no HTTP client
that the app could start using silently, except the test-side ``httpx``.
"""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_runtime_dependency_fetches_from_third_parties():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].strip().lower() for dep in project["dependencies"]}
    # httpx is listed for the benchmarks and the tests; no module of app/ imports it (API7)
    assert not names & {"requests", "aiohttp", "urllib3", "pycurl", "boto3"}
