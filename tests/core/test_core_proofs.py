"""Signatures verified once for all of a server's processes (``app.core.proofs``), and every other check kept."""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.core import proofs, security
from tests.factories import invoke_cli

ROOT = Path(__file__).resolve().parents[2]


def digests_in_one_bucket(n: int) -> list[bytes]:
    """``n`` different digests that all fall in bucket 7."""
    head = (7).to_bytes(8, "big")
    return [head + bytes([i]) + bytes(23) for i in range(n)]


class TestTable:
    def test_holds_exactly_what_was_added(self):
        table = proofs._private()
        a, b = proofs.digest(b"a"), proofs.digest(b"b")
        assert a not in table
        table.add(a)
        assert a in table
        assert b not in table
        table.add(a)  # again: still one slot
        assert a in table

    def test_parts_are_length_prefixed(self):
        assert proofs.digest(b"ab", b"c") != proofs.digest(b"a", b"bc")
        assert proofs.digest(b"ab", b"c") == proofs.digest(b"ab", b"c")

    def test_only_whole_digests(self):
        table = proofs._private()
        assert b"" not in table
        assert bytes(32) not in table  # an empty slot is nobody's proof
        for wrong in (b"short", bytes(32)):
            with pytest.raises(ValueError):
                table.add(wrong)

    def test_a_full_bucket_gives_up_one_slot(self):
        table = proofs._private()
        first, *rest = digests_in_one_bucket(proofs.WAYS + 1)
        for d in [first, *rest[:-1]]:
            table.add(d)
        assert all(d in table for d in [first, *rest[:-1]])
        table.add(rest[-1])
        held = [d for d in [first, *rest] if d in table]
        assert rest[-1] in held
        assert len(held) == proofs.WAYS


class TestSharedByWorkers:
    def test_one_worker_keeps_its_own(self, monkeypatch):
        monkeypatch.delenv(proofs.ENV, raising=False)
        with proofs.shared_by_workers(1) as path:
            assert path is None
            assert proofs.ENV not in os.environ

    def test_a_file_for_the_workers_removed_after(self, monkeypatch):
        monkeypatch.delenv(proofs.ENV, raising=False)
        with proofs.shared_by_workers(2) as path:
            assert path is not None
            assert os.environ[proofs.ENV] == str(path)
            info = path.stat()
            assert info.st_size == proofs.SIZE
            assert stat.S_IMODE(info.st_mode) == 0o600
            assert info.st_uid == os.getuid()
        assert not path.exists()
        assert proofs.ENV not in os.environ

    def test_what_one_process_adds_another_finds(self, monkeypatch):
        monkeypatch.delenv(proofs.ENV, raising=False)
        d = proofs.digest(b"proved elsewhere")
        with proofs.shared_by_workers(2) as path:
            code = f"from app.core import proofs; proofs.table().add(bytes.fromhex({d.hex()!r}))"
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ, check=True, timeout=60)
            here = proofs._mapped(str(path))
            assert here is not None
            assert d in here
            assert proofs.digest(b"never proved") not in here

    @pytest.mark.parametrize("problem", ["size", "mode", "missing"])
    def test_a_file_it_did_not_make_is_not_used(self, tmp_path, problem):
        path = tmp_path / "table"
        if problem != "missing":
            path.write_bytes(bytes(proofs.SIZE - (problem == "size")))
            path.chmod(0o644 if problem == "mode" else 0o600)
        assert proofs._mapped(str(path)) is None

    def test_a_killed_servers_table_is_removed_by_the_next(self, tmp_path):
        ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        dead = tmp_path / f"{proofs.PREFIX}{int(ended.stdout)}-abc"
        alive = tmp_path / f"{proofs.PREFIX}{os.getpid()}-def"
        other = tmp_path / f"{proofs.PREFIX}not-a-pid"
        for path in (dead, alive, other):
            path.write_bytes(b"")
        proofs._remove_orphans(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])

    async def test_serve_starts_its_workers_with_the_table(self, run_sync, monkeypatch):
        import uvicorn

        from app import cli

        seen: dict = {}

        def fake_run(*args, **kwargs):
            path = Path(os.environ[proofs.ENV])
            seen.update(workers=kwargs["workers"], path=path, size=path.stat().st_size)

        settings = cli.get_settings()

        class Kept:  # serve clears the settings' cache after it sets its URLs: the tests' settings stay
            def __call__(self):
                return settings

            def cache_clear(self) -> None:
                pass

        monkeypatch.setattr(uvicorn, "run", fake_run)
        monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # not the main thread here
        monkeypatch.setattr(cli.embedded, "stop_all", lambda **kwargs: None)  # the tests' own servers
        monkeypatch.setattr(cli, "get_settings", Kept())
        monkeypatch.setattr(
            os, "environ", {k: v for k, v in os.environ.items() if k != proofs.ENV}
        )  # serve sets URLs
        result = await invoke_cli(run_sync, "serve", "--workers", "2")
        assert result.exit_code == 0, result.output
        assert seen["workers"] == 2
        assert seen["size"] == proofs.SIZE
        assert not seen["path"].exists()
        assert proofs.ENV not in os.environ


@pytest.fixture
def signing():
    pem = security.generate_es256_pem()
    return security.SigningKey("k1", "ES256", pem, security.public_jwk_from_pem(pem))


@pytest.fixture
def verifications(monkeypatch, signing):
    """How many times a signature is checked by the library (OpenSSL) from now on."""
    key_type = type(security._key(signing.public_jwk, "ES256"))
    checked = []
    original = key_type.verify

    def counted(self, msg, sig):
        checked.append(msg)
        return original(self, msg, sig)

    monkeypatch.setattr(key_type, "verify", counted)
    return checked


def token(signing, **claims) -> str:
    return security.sign_jwt(
        {"sub": "someone", "iss": "carbon-points", "exp": time.time() + 600, **claims}, signing
    )


class TestVerifyOnce:
    def test_a_verified_signature_is_not_checked_again(self, signing, verifications):
        t = token(signing)
        first = security.verify_jwt(t, signing.public_jwk, "ES256", issuer="carbon-points")
        second = security.verify_jwt(t, signing.public_jwk, "ES256", issuer="carbon-points")
        assert first == second
        assert first["sub"] == "someone"
        assert len(verifications) == 1

    def test_other_bytes_are_checked(self, signing, verifications):
        t = token(signing)
        security.verify_jwt(t, signing.public_jwk, "ES256")
        head, body, sig = t.split(".")
        forged = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
        with pytest.raises(security.JoseError) as refused:
            security.verify_jwt(forged, signing.public_jwk, "ES256")
        assert refused.value.code == "invalid_signature"
        with pytest.raises(security.JoseError) as refused:  # and once more: a refusal is not remembered
            security.verify_jwt(forged, signing.public_jwk, "ES256")
        assert refused.value.code == "invalid_signature"
        assert len(verifications) == 3

    def test_proved_with_one_key_says_nothing_of_another(self, signing):
        t = token(signing)
        security.verify_jwt(t, signing.public_jwk, "ES256")
        other = security.public_jwk_from_pem(security.generate_es256_pem())
        with pytest.raises(security.JoseError) as refused:
            security.verify_jwt(t, other, "ES256")
        assert refused.value.code == "invalid_signature"

    def test_every_other_check_is_made_again(self, signing, verifications):
        t = token(signing, exp=1_000_000 + 60)
        assert security.verify_jwt(t, signing.public_jwk, "ES256", issuer="carbon-points", now=1_000_000)[
            "exp"
        ]
        with pytest.raises(security.JoseError) as refused:
            security.verify_jwt(t, signing.public_jwk, "ES256", issuer="carbon-points", now=1_000_000 + 61)
        assert refused.value.code == "token_expired"
        with pytest.raises(security.JoseError) as refused:
            security.verify_jwt(t, signing.public_jwk, "ES256", issuer="someone-else", now=1_000_000)
        assert refused.value.code == "invalid_claims"
        with pytest.raises(security.JoseError) as refused:
            security.verify_jwt(t, signing.public_jwk, "ES256", audience="carbon-points", now=1_000_000)
        assert refused.value.code == "invalid_audience"
        with pytest.raises(security.JoseError) as refused:
            security.verify_jwt(t, signing.public_jwk, "RS256", now=1_000_000)
        assert refused.value.code == "algorithm_not_allowed"
        assert len(verifications) == 1

    def test_a_signature_verified_by_another_process(self, signing, verifications, monkeypatch):
        monkeypatch.delenv(proofs.ENV, raising=False)
        theirs, ours = token(signing), token(signing)
        with proofs.shared_by_workers(2) as path:
            code = (
                "import sys, json; from app.core import security;"
                " security.verify_jwt(sys.argv[1], json.loads(sys.argv[2]), 'ES256', issuer='carbon-points')"
            )
            jwk = json.dumps(signing.public_jwk)
            subprocess.run(
                [sys.executable, "-c", code, theirs, jwk], cwd=ROOT, env=os.environ, check=True, timeout=60
            )
            monkeypatch.setattr(proofs, "_table", proofs._mapped(str(path)))
            assert (
                security.verify_jwt(theirs, signing.public_jwk, "ES256", issuer="carbon-points")["sub"]
                == "someone"
            )
            assert verifications == []  # proved in the other process
            security.verify_jwt(ours, signing.public_jwk, "ES256", issuer="carbon-points")
            assert len(verifications) == 1


def signed(signing, payload: str, header: str = '{"alg":"ES256"}') -> str:
    """A compact JWS over exactly these header and payload texts (whatever they hold), signed with ``signing``."""
    key = serialization.load_pem_private_key(signing.private_pem.encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    head = f"{security.b64url(header.encode())}.{security.b64url(payload.encode())}"
    r, s = decode_dss_signature(key.sign(head.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{head}.{security.b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def refusal(token: str, public_jwk: dict, **checks) -> tuple[str, str]:
    with pytest.raises(security.JoseError) as refused:
        security.verify_jwt(token, public_jwk, "ES256", **checks)
    return refused.value.code, refused.value.detail


class TestReading:
    """A token's segments are read once, by the platform's own code, with the checks python-jose made."""

    def test_a_token_signed_elsewhere_is_read_exactly(self, signing):
        exp = int(time.time()) + 600
        t = signed(
            signing, f'{{"sub":"s\\\\u0000","iss":"carbon-points","exp":{exp},"n":[1,{{"k":"\\u00e9"}}]}}'
        )
        claims = security.verify_jwt(t, signing.public_jwk, "ES256", issuer="carbon-points")
        # an escaped backslash before u0000 is six characters, not a NUL
        assert claims == {"sub": "s\\u0000", "iss": "carbon-points", "exp": exp, "n": [1, {"k": "é"}]}
        assert security.unverified_claims(t) == claims
        assert security.unverified_header(t) == {"alg": "ES256"}

    def test_segments_other_than_three_are_no_token(self, signing):
        t = token(signing)
        for broken in (t.rsplit(".", 1)[0], f"{t}.{t.split('.')[2]}", "", "a.b"):
            assert refusal(broken, signing.public_jwk)[0] == "malformed_token"
            with pytest.raises(security.JoseError) as refused:
                security.unverified_header(broken)
            assert refused.value.code == "malformed_token"

    @pytest.mark.parametrize("header", ["[1]", "not json", '"alg"', '{"alg":"ES256","kid":"a\\u0000"}'])
    def test_a_header_that_is_no_json_object_or_holds_a_nul(self, signing, header):
        t = signed(signing, '{"sub":"x"}', header=header)
        assert refusal(t, signing.public_jwk)[0] == "malformed_token"

    def test_a_nul_in_a_claim_is_refused(self, signing):
        exp = int(time.time()) + 600
        for payload in (f'{{"exp":{exp},"jti":"a\\u0000b"}}', f'{{"exp":{exp},"x":{{"\\u0000":1}}}}'):
            t = signed(signing, payload)
            assert refusal(t, signing.public_jwk) == (
                "invalid_claims",
                "the token's claims set holds the NUL character",
            )

    @pytest.mark.parametrize("payload", ["[1,2]", "not json", '"text"', "\u00ff"])
    def test_signed_claims_that_are_no_json_object(self, signing, payload):
        assert refusal(signed(signing, payload), signing.public_jwk)[0] == "invalid_claims"

    def test_claims_of_the_wrong_type(self, signing):
        exp = int(time.time()) + 600
        cases = {
            f'{{"exp":{exp},"iss":"carbon-points","sub":12}}': "Subject must be a string.",
            f'{{"exp":{exp},"iss":"carbon-points","jti":["a"]}}': "JWT ID must be a string.",
            f'{{"exp":{exp},"iss":"someone-else"}}': "Invalid issuer",
            f'{{"exp":{exp}}}': "Invalid issuer",
        }
        for payload, detail in cases.items():
            code, said = refusal(signed(signing, payload), signing.public_jwk, issuer="carbon-points")
            assert (code, said) == ("invalid_claims", detail)
        assert (
            refusal(signed(signing, f'{{"exp":{exp},"sub":12}}'), signing.public_jwk)[0] == "invalid_claims"
        )

    @pytest.mark.parametrize("signature", ["", "!!!!", "é" * 86, "AAAA"])
    def test_a_signature_that_is_not_one(self, signing, signature):
        head, body, _ = token(signing).split(".")
        assert refusal(f"{head}.{body}.{signature}", signing.public_jwk)[0] == "invalid_signature"

    def test_a_payload_changed_after_signing(self, signing, verifications):
        head, body, sig = token(signing).split(".")
        other = security.b64url(b'{"sub":"someone-else","iss":"carbon-points","exp":9999999999}')
        assert refusal(f"{head}.{other}.{sig}", signing.public_jwk)[0] == "invalid_signature"
        assert len(verifications) == 1
