"""The SMS sender: the development outbox (masked numbers, refused in production) and the HTTP gateway."""

import json

import httpx
import pytest

from app.core import sms
from app.core.config import get_settings


def test_numbers_are_masked():
    assert sms.mask("+8613800138000") == "+86138****8000"
    assert sms.mask("+123") == "****"


@pytest.fixture
def gateway(monkeypatch, settings):
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200 if b"fail" not in request.content else 502)

    real = httpx.AsyncClient
    monkeypatch.setattr(
        sms.httpx, "AsyncClient", lambda **kw: real(transport=httpx.MockTransport(answer), **kw)
    )
    monkeypatch.setattr(settings, "sms_backend", "http")
    monkeypatch.setattr(settings, "sms_http_url", "https://sms.example.cn/send")
    return sent


async def test_the_gateway_gets_the_template_filled_in(gateway, app):
    await sms.send(None, "+8613800138000", '验证码 123456 "quoted"')  # type: ignore[arg-type]
    (request,) = gateway
    assert str(request.url) == "https://sms.example.cn/send"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"to": "+8613800138000", "text": '验证码 123456 "quoted"'}


async def test_a_form_template_is_form_encoded(gateway, settings, monkeypatch, app):
    monkeypatch.setattr(settings, "sms_http_template", "mobile={phone}&content={message}")
    monkeypatch.setattr(settings, "sms_http_content_type", "application/x-www-form-urlencoded")
    await sms.send(None, "+8613800138000", "code 1&2")  # type: ignore[arg-type]
    assert gateway[0].content == b"mobile=%2B8613800138000&content=code+1%262"


async def test_a_failing_gateway_is_sms_unavailable(gateway, app):
    with pytest.raises(sms.SmsUnavailable):
        await sms.send(None, "+8613800138000", "fail")  # type: ignore[arg-type]


async def test_the_outbox_is_refused_in_production(settings, monkeypatch, app):
    monkeypatch.setattr(settings, "environment", "production")
    with pytest.raises(sms.SmsUnavailable):
        await sms.send(None, "+8613800138000", "x")  # type: ignore[arg-type]
    with pytest.raises(sms.OutboxRefused):
        await sms.outbox(None)  # type: ignore[arg-type]
    assert get_settings().environment == "production"
