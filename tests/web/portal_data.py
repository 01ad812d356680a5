"""Data the portal's tests read: the shipped methodologies, an approved scene, a CER project in publicity,
an issuance and a retirement certificate. Made once a session through the API (committed)."""

from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from app.core import clock
from tests.factories import authority_token, make_org, unique
from tests.factories_cer import add_records, create_project, issued_units, make_owner
from tests.factories_scenes import approved_scene, publish_scene_types


@dataclass
class PortalData:
    scene: dict
    project: dict
    issuance: dict
    certificate: dict  # the retirement as the API answered it


@pytest.fixture(scope="session", name="portal_data")
async def portal_data_fixture(app, tmp_path_factory) -> PortalData:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50003))
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
        authority = await authority_token(client)
        await publish_scene_types(tmp_path_factory.mktemp("portal-scene-types"))
        operator = await make_org(client, "scene_operator", authority=authority)
        scene = await approved_scene(
            client, authority, operator, name=unique("绿色咖啡馆 Portal"), district_code="440305"
        )
        try:
            owner, issuance = await issued_units(client, authority, 2)
            r = await client.post(
                "/v1/cer/retirements",
                json={
                    "tonnes": 1,
                    "beneficiary": {"kind": "event", "name": "深圳马拉松 <b>2026</b>"},
                    "purpose": "赛事碳中和 Carbon neutrality of the marathon",
                },
                headers=owner.headers,
            )
            assert r.status_code == 201, r.text
            certificate = r.json()
        finally:
            clock.set_offset(timedelta(0))
        owner2 = await make_owner(client, authority)
        await add_records(client, owner2, [(3, 30.0), (2, 20.0)])
        project = await create_project(
            client,
            owner2,
            clock.today() - timedelta(days=5),
            clock.today() - timedelta(days=1),
            name=unique("公示项目 Publicity"),
        )
    return PortalData(scene, project, issuance, certificate)
