import base64
import hashlib
import json
import stat

import pytest
from carbon_operator.keys import KeyFileError, OperatorKey, jwk_thumbprint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestPublicJwk:
    def test_members_are_those_of_an_es256_signing_key(self, operator_key):
        jwk = operator_key.public_jwk()
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
        assert "d" not in jwk

    def test_coordinates_are_the_public_point(self, operator_key):
        jwk = operator_key.public_jwk()
        numbers = operator_key.private_key.public_key().public_numbers()
        assert jwk["x"] == _b64(numbers.x.to_bytes(32, "big"))
        assert jwk["y"] == _b64(numbers.y.to_bytes(32, "big"))
        assert len(base64.urlsafe_b64decode(jwk["x"] + "=")) == 32

    def test_kid_is_the_rfc7638_thumbprint(self, operator_key):
        jwk = operator_key.public_jwk()
        canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'.encode()
        assert jwk["kid"] == _b64(hashlib.sha256(canonical).digest())
        assert operator_key.kid == jwk["kid"] == jwk_thumbprint(jwk)

    def test_thumbprint_ignores_optional_members(self, operator_key):
        jwk = operator_key.public_jwk()
        bare = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
        assert jwk_thumbprint(bare) == jwk_thumbprint({**bare, "alg": "ES256", "use": "sig", "kid": "other"})

    def test_two_keys_have_two_kids(self):
        assert OperatorKey.generate().kid != OperatorKey.generate().kid

    def test_public_jwk_is_a_copy(self, operator_key):
        operator_key.public_jwk()["kid"] = "changed"
        assert operator_key.public_jwk()["kid"] == operator_key.kid


class TestKeyFile:
    def test_saved_with_mode_0600_and_loaded_back(self, tmp_path):
        key = OperatorKey.generate()
        path = key.save(tmp_path / "k.pem")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert OperatorKey.load(path).public_jwk() == key.public_jwk()

    def test_an_existing_file_is_not_overwritten_unless_asked(self, tmp_path):
        path = OperatorKey.generate().save(tmp_path / "k.pem")
        with pytest.raises(FileExistsError):
            OperatorKey.generate().save(path)
        replacement = OperatorKey.generate()
        replacement.save(path, overwrite=True)
        assert OperatorKey.load(path).kid == replacement.kid

    def test_missing_file(self, tmp_path):
        with pytest.raises(KeyFileError, match="cannot read"):
            OperatorKey.load(tmp_path / "absent.pem")

    def test_other_curves_and_rsa_are_refused(self):
        for private in (ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)):
            pem = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            with pytest.raises(KeyFileError, match="P-256"):
                OperatorKey.from_pem(pem)

    def test_garbage_is_refused(self):
        with pytest.raises(KeyFileError):
            OperatorKey.from_pem(json.dumps({"not": "a key"}))
