import base64
import json
import time

import pytest
from carbon_operator.keys import OperatorKey, b64url
from carbon_operator.signing import client_assertion, sign_detached, verify_detached
from jose import jws, jwt
from jose.exceptions import JWSError

AUDIENCE = "http://platform.test/v1/auth/token"
CLIENT_ID = "0b9c3a2e-6f41-4a4e-9a53-3d8c3c2f8a11"


def _segment(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


class TestClientAssertion:
    def test_header_names_the_key(self, operator_key):
        header = jwt.get_unverified_header(client_assertion(operator_key, CLIENT_ID, AUDIENCE))
        assert header["alg"] == "ES256"
        assert header["kid"] == operator_key.kid

    def test_claims_verify_against_the_public_key(self, operator_key):
        token = client_assertion(operator_key, CLIENT_ID, AUDIENCE, now=time.time())
        claims = jwt.decode(token, operator_key.public_jwk(), algorithms=["ES256"], audience=AUDIENCE)
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["aud"] == AUDIENCE
        assert claims["exp"] - claims["iat"] == 60
        assert len(claims["jti"]) == 32 and int(claims["jti"], 16) >= 0

    def test_iat_follows_the_given_clock(self, operator_key):
        token = client_assertion(operator_key, CLIENT_ID, AUDIENCE, now=1_800_000_000.7)
        claims = jwt.get_unverified_claims(token)
        assert (claims["iat"], claims["exp"]) == (1_800_000_000, 1_800_000_060)

    def test_every_assertion_has_its_own_jti(self, operator_key):
        jtis = {
            jwt.get_unverified_claims(client_assertion(operator_key, CLIENT_ID, AUDIENCE))["jti"]
            for _ in range(5)
        }
        assert len(jtis) == 5

    def test_another_key_does_not_verify_it(self, operator_key):
        token = client_assertion(operator_key, CLIENT_ID, AUDIENCE)
        with pytest.raises(jwt.JWTError):
            jwt.decode(token, OperatorKey.generate().public_jwk(), algorithms=["ES256"], audience=AUDIENCE)


class TestDetachedSignature:
    BODY = b'{"records":[{"record_id":"op-1","quantity":12.4}]}'

    def test_is_header_dot_dot_signature(self, operator_key):
        head, middle, sig = sign_detached(self.BODY, operator_key).split(".")
        assert middle == ""
        assert _segment(head) == {"alg": "ES256", "kid": operator_key.kid}
        assert len(base64.urlsafe_b64decode(sig + "==")) == 64

    def test_verifies_with_jose_once_the_payload_is_put_back(self, operator_key):
        head, _, sig = sign_detached(self.BODY, operator_key).split(".")
        payload = jws.verify(
            f"{head}.{b64url(self.BODY)}.{sig}", operator_key.public_jwk(), algorithms=["ES256"]
        )
        assert payload == self.BODY

    def test_a_tampered_body_fails(self, operator_key):
        head, _, sig = sign_detached(self.BODY, operator_key).split(".")
        tampered = self.BODY.replace(b"12.4", b"99.4")
        with pytest.raises(JWSError):
            jws.verify(f"{head}.{b64url(tampered)}.{sig}", operator_key.public_jwk(), algorithms=["ES256"])

    def test_verify_detached(self, operator_key):
        signature = sign_detached(self.BODY, operator_key)
        assert verify_detached(signature, self.BODY, operator_key.public_jwk())
        assert not verify_detached(signature, self.BODY + b" ", operator_key.public_jwk())
        assert not verify_detached(signature, self.BODY, OperatorKey.generate().public_jwk())
        assert not verify_detached("not.a-signature", self.BODY, operator_key.public_jwk())
