"""Demo data of the points engine: an operator with a key, three people and a week of behaviours."""

import base64
import hashlib
import os
import secrets
from datetime import timedelta
from urllib.parse import urlencode

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock, security
from app.core.config import get_settings
from app.demo import approved_org, authority
from app.organizations import service as org_service
from app.organizations.schemas import SCOPES
from app.points import ingestion
from app.users import service as users_service
from app.users.schemas import Consent, EnrolUser, Identifier

OPERATOR = ("demo-operator", "demo-operator-pw")
PEOPLE = [("demo-alice", "+8613800000001"), ("demo-bob", "+8613800000002"), ("demo-carol", "+8613800000003")]
TRIPS = [("metro", 12.4), ("bus", 6.0), ("cycling", 3.2), ("walking", 2.5)]


DEMO_REDIRECT = "http://127.0.0.1:8765/callback"
"""The demo operator's registered redirect URI (loopback: allowed outside production)."""


async def load(session: AsyncSession) -> list[str]:
    existing = await org_service.staff_org_id(session, OPERATOR[0])
    if existing:
        return [f"demo operator already there: client id {existing}"]
    org, admin = await approved_org(
        session, kind="operator", name="深圳低碳出行 (demo)", credit_code="91440300MA5DEM0001", admin=OPERATOR
    )
    # the demo operator stands for a city's real-name app: trusted to enrol people on its own word
    the_authority = await authority(session)
    await org_service.set_trusted_enrolment(
        session, the_authority, org.id, True, "demo: the city's real-name app"
    )
    await org_service.set_allowed_scopes(session, the_authority, org.id, SCOPES, "demo: every scope")
    pem = security.generate_es256_pem()
    key = await org_service.register_key(session, admin, org.id, security.public_jwk_from_pem(pem))
    key_path = get_settings().data_dir.resolve() / "demo-operator-key.pem"
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(pem)
    os.chmod(key_path, 0o600)
    await org_service.add_redirect_uri(session, admin, org.id, DEMO_REDIRECT)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = f"{get_settings().public_base_url.rstrip('/')}/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": str(org.id),
            "redirect_uri": DEMO_REDIRECT,
            "scope": "behaviours:submit account:read",
            "state": "demo",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )

    operator = Principal("client", "operator", org.id, org.id)
    now = clock.now()
    for external_id, phone in PEOPLE:
        await users_service.enrol(
            session,
            operator,
            EnrolUser(
                external_user_id=external_id,
                identifier=Identifier(type="phone", value=phone),
                consent=Consent(agreement_version="2026-01", accepted_at=now - timedelta(days=30)),
            ),
        )
    records = []
    for day in range(1, 8):
        for n, (external_id, _) in enumerate(PEOPLE):
            btype, quantity = TRIPS[(day + n) % len(TRIPS)]
            start = (now - timedelta(days=day)).replace(
                hour=0, minute=30, second=0, microsecond=0
            ) + timedelta(hours=n)
            records.append(
                {
                    "record_id": f"demo-{external_id}-{day}",
                    "external_user_id": external_id,
                    "type": btype,
                    "started_at": start.isoformat(),
                    "ended_at": (start + timedelta(minutes=35)).isoformat(),
                    "quantity": quantity,
                    "unit": "km",
                    "scene_id": None,
                    "evidence": {"source": "demo-app", "ref": f"demo-{external_id}-{day}"},
                }
            )
    body = orjson.dumps({"records": records})
    result = await ingestion.ingest(
        session, operator, body, security.sign_detached(body, pem, "ES256", key.kid)
    )
    summary = result.summary
    return [
        f"operator '{org.name}': admin login {OPERATOR[0]} / {OPERATOR[1]}, client id {org.id}",
        f"  trusted by the authority to enrol people on its own word; may ask for: {' '.join(SCOPES)}",
        f"  its private key (ES256, kid {key.kid}): {key_path}",
        f"  people: {', '.join(p[0] for p in PEOPLE)}; a week of trips: {summary.accepted} accepted",
        f"  try the operator CLI: carbon-operator --client-id {org.id} --key {key_path} account demo-alice",
        f"  a person entrusts it themselves: open {authorize}",
        f"    (the code is in /dev/outbox; the app's code_verifier for the token exchange: {verifier})",
    ]
