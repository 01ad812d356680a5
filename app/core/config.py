"""Every setting of the platform, read from ``CARBON_*`` environment variables and ``.env``."""

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core import proxies
from app.core.db import DIRECT_POOL_SIZE

LOCAL_SECRET = "local-development-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARBON_", env_file=".env", extra="ignore")

    environment: Literal["local", "test", "production"] = "local"
    database_url: str | None = None
    """PostgreSQL URL (``postgresql://user:pw@host/db``). Unset: an embedded server under ``data_dir``."""
    redis_url: str | None = None
    """Redis URL. Unset: an embedded Redis under ``data_dir``."""
    data_dir: Path = Path(".data")
    bootstrap_admin: str | None = None
    """``username:password`` of the first authority account, created at start-up when none exists."""
    timezone: str = "Asia/Shanghai"
    public_base_url: str = "http://127.0.0.1:8000"
    """Where clients reach the API; the token URL (``aud`` of client assertions) derives from it."""

    identity_hash_key: str = LOCAL_SECRET
    """HMAC-SHA256 key that turns a normalised phone number into a person's identity hash."""
    webhook_secret_key: str = LOCAL_SECRET
    """The key (through HKDF) under which webhook subscriptions' signing secrets are sealed (AES-GCM)."""
    webhook_expiring_days: int = 30
    """``points.expiring``: the daily digest names points that expire within this many days."""
    token_ttl_seconds: int = 3600
    user_token_ttl_seconds: int = 900
    client_assertion_max_lifetime_seconds: int = 300

    record_max_age_days: int = 90
    """Behaviour records older than this are refused (``too_old``)."""
    cer_cutoff_date: date = date(2020, 9, 22)
    """CER projects count no behaviour before this day (JX 12); ``region_code`` (division-code prefix) bounds scene records; ``cer_serial_prefix`` starts unit serials."""
    region_code: str = "4403"
    cer_serial_prefix: str = "CN-SZ-PHCER"
    idempotency_ttl_hours: int = 48
    rate_limit_per_minute: int = 600
    """Requests a minute per organisation (authenticated) or per client IP (anonymous)."""
    login_rate_limit_per_minute: int = 30
    web_session_idle_minutes: int = 60
    """A browser session ends after this long without a request, and ``web_session_max_hours`` after sign-in."""
    web_session_max_hours: int = 12
    person_session_idle_minutes: int = 15
    """A person's own session on the platform (``/me``) ends after this long without a request, and
    ``person_session_max_hours`` after sign-in."""
    person_session_max_hours: int = 2
    max_body_bytes: int = 2_000_000
    """Largest request body accepted (413 ``payload_too_large`` beyond), declared or chunked."""
    cors_origins: str = ""
    """Comma-separated browser origins allowed by CORS (``https://a.example,https://b.example``); empty: none."""
    opentelemetry: bool = False
    """FastAPI's own OpenTelemetry spans, metrics and logs for every request, to the providers an OpenTelemetry
    SDK set up in the process (``opentelemetry-instrument``, for one). Off by default: the platform's metrics are
    Prometheus's (``/metrics``) and its logs JSON lines; and with no SDK set up, FastAPI would still ask on every
    request whether one had been since (4 µs a request, more than matching a route)."""
    public_figures_max_age_seconds: int = 60
    """How old the platform-wide figures anyone may see (``/v1/public/totals``, the home page's totals and
    charts) may be: each process reads them at most once in this long, as their answers'
    ``Cache-Control: max-age`` allows, rather than summing the whole ledger for every visit. 0: read every time."""
    hsts_seconds: int = 0
    """When > 0, HTTPS responses carry ``Strict-Transport-Security: max-age=…`` (behind a TLS proxy)."""
    trusted_proxies: str = ""
    """Comma-separated addresses and networks (``10.0.0.5,10.1.0.0/16``) of the reverse proxies whose
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed; empty: nobody's (:mod:`app.core.proxies`)."""
    voucher_guess_limit_per_minute: int = 20
    """Failed voucher look-ups a merchant may make a minute before redemption answers 429."""
    operator_redemption_reversal_days: int = 7
    """How long an operator may reverse a redemption made in its own mall."""
    sms_backend: Literal["outbox", "http"] = "outbox"
    """How one-time codes reach phones: ``outbox`` (kept for the developer; refused in production) or ``http``."""
    sms_http_url: str = ""
    sms_http_template: str = '{"to": "{phone}", "text": "{message}"}'
    """The gateway's request body; ``{phone}`` (E.164) and ``{message}`` are replaced, escaped for the content type."""
    sms_http_content_type: str = "application/json"
    sms_http_timeout_seconds: float = 10.0
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 5
    otp_per_phone_per_hour: int = 5
    """One-time codes sent to one phone an hour (and ``otp_per_ip_per_hour`` requested from one client address)."""
    otp_per_ip_per_hour: int = 20
    oauth_code_ttl_seconds: int = 60
    refresh_token_ttl_days: int = 90
    agreement_version: str = "2026-11"
    """The entrustment agreement version people accept on the consent page."""
    db_pool_size: int = 20
    db_direct_pool_size: int = Field(default=DIRECT_POOL_SIZE, ge=1)
    """The connections a process runs balance reads' and orders' statements on, each taken by a request's
    first statement and given back when it ends (:data:`app.core.db.DIRECT_POOL_SIZE`)."""
    scheduler_enabled: bool = True
    log_level: str = "INFO"

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        try:
            proxies.networks(value)
        except ValueError as exc:
            raise ValueError(
                f"CARBON_TRUSTED_PROXIES: {exc} (addresses and networks, comma-separated)"
            ) from exc
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> "Settings":
        if self.environment == "production" and self.identity_hash_key == LOCAL_SECRET:
            raise ValueError("CARBON_IDENTITY_HASH_KEY must be set outside local mode")
        if self.environment == "production" and self.webhook_secret_key == LOCAL_SECRET:
            raise ValueError("CARBON_WEBHOOK_SECRET_KEY must be set outside local mode")
        if self.bootstrap_admin:  # empty means unset (docker-compose passes "" when not given)
            username, _, password = self.bootstrap_admin.partition(":")
            if not username or len(password) < 8:
                raise ValueError(
                    "CARBON_BOOTSTRAP_ADMIN must be username:password (a password of 8+ characters)"
                )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def token_url(self) -> str:
        return self.public_base_url.rstrip("/") + "/v1/auth/token"


@lru_cache
def get_settings() -> Settings:
    return Settings()
