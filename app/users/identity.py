"""A person's identity: the keyed hash of the normalised phone number. The number is never stored."""

import hashlib
import hmac

import phonenumbers

from app.core.config import get_settings
from app.users.exceptions import InvalidIdentifier

DEFAULT_REGION = "CN"


def normalise_phone(value: str) -> str:
    """E.164 form (``+8613800138000``); numbers without a country code are taken as Chinese."""
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentifier("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity_hash(identifier_type: str, value: str) -> bytes:
    if identifier_type != "phone":
        raise InvalidIdentifier("identifier type must be 'phone'")
    normalised = normalise_phone(value)
    key = get_settings().identity_hash_key.encode()
    return hmac.new(key, f"phone:{normalised}".encode(), hashlib.sha256).digest()
