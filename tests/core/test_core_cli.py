"""The ``carbon-points`` command line: create-admin, keys rotate, migrate; the bootstrap admin."""

import pytest
import sqlalchemy as sa

from app.auth import keys
from app.core import db, security
from app.core.config import Settings
from app.main import bootstrap_admin
from app.organizations import service as org_service
from tests.factories import PASSWORD, bearer, invoke_cli, login, unique


class TestCreateAdmin:
    async def test_creates_an_authority_account_that_logs_in(self, client, run_sync):
        username = unique("admin")
        result = await invoke_cli(run_sync, "create-admin", username, "--password", PASSWORD)
        assert result.exit_code == 0, result.output
        assert result.output == f"authority account '{username}' created\n"
        token = await login(client, username)
        assert security.unverified_claims(token)["role"] == "authority"
        assert (await client.get("/v1/organizations?limit=1", headers=bearer(token))).status_code == 200

    async def test_taken_username(self, run_sync):
        username = unique("admin")
        assert (await invoke_cli(run_sync, "create-admin", username, "--password", PASSWORD)).exit_code == 0
        again = await invoke_cli(run_sync, "create-admin", username, "--password", PASSWORD)
        assert again.exit_code == 1
        assert again.output == f"username_taken: the username '{username}' is taken\n"

    async def test_short_password(self, run_sync):
        result = await invoke_cli(run_sync, "create-admin", unique("admin"), "--password", "short")
        assert result.exit_code == 2
        assert result.output == "the password needs at least 8 characters\n"


class TestKeysRotate:
    async def test_rotate_from_the_command_line(self, client, run_sync):
        before = keys.active().kid
        result = await invoke_cli(run_sync, "keys", "rotate")
        assert result.exit_code == 0, result.output
        kid = result.output.removeprefix("new signing key: ").strip()
        assert kid != before
        async with db.session_scope() as session:
            active = (
                (
                    await session.execute(
                        sa.text("SELECT kid FROM platform_signing_keys WHERE retired_at IS NULL")
                    )
                )
                .scalars()
                .all()
            )
        assert active == [kid]
        async with db.session_scope() as session:
            await keys.load(session)  # what every process does within a minute (or on an unknown kid)
        username = unique("admin")
        async with db.session_scope() as session:
            await org_service.create_staff_user(session, username, PASSWORD, "authority")
        assert security.unverified_header(await login(client, username))["kid"] == kid


class TestMigrate:
    async def test_migrate_twice(self, run_sync):
        for _ in range(2):
            result = await invoke_cli(run_sync, "migrate")
            assert result.exit_code == 0, result.output
            assert result.output.endswith("database is up to date\n")


class TestBootstrapAdmin:
    async def test_created_only_when_no_authority_exists(self, client, monkeypatch):
        username = unique("boot")
        monkeypatch.setattr(org_service, "authority_exists", _answer(True))
        await bootstrap_admin(Settings(bootstrap_admin=f"{username}:{PASSWORD}"))
        r = await client.post(
            "/v1/auth/token", data={"grant_type": "password", "username": username, "password": PASSWORD}
        )
        assert r.json()["code"] == "invalid_grant"

        monkeypatch.setattr(org_service, "authority_exists", _answer(False))
        await bootstrap_admin(Settings(bootstrap_admin=f"{username}:{PASSWORD}"))
        assert security.unverified_claims(await login(client, username))["role"] == "authority"

    @pytest.mark.parametrize("value", ["admin", "admin:short", ":long-enough-password"])
    def test_malformed_setting_refused(self, value):
        with pytest.raises(ValueError, match="CARBON_BOOTSTRAP_ADMIN"):
            Settings(bootstrap_admin=value)


def _answer(value: bool):
    async def exists(session) -> bool:
        return value

    return exists
