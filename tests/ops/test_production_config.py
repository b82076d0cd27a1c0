"""Production refuses unsafe settings at start; proxies are trusted only when configured."""

from __future__ import annotations

import pytest

from core import create_app
from core.extensions import db

STRONG_KEY = "0123456789abcdef0123456789abcdef0123456789abcdef"


def production_app(monkeypatch, base_config, **overrides):
    monkeypatch.setenv("SLOTGUARD_ENV", "production")
    app = create_app({**base_config, "SECRET_KEY": STRONG_KEY, **overrides})
    with app.app_context():
        db.engine.dispose()
    return app


@pytest.mark.parametrize("overrides, message", [
    ({"SECRET_KEY": "dev-only-change-me"}, "SECRET_KEY is a development key"),
    ({"SECRET_KEY": "short-key"}, "SECRET_KEY is a development key"),
    ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
    ({"RETELL_API_KEY": None}, "RETELL_API_KEY is not set"),
    ({"CALCOM_WEBHOOK_SECRET": ""}, "CALCOM_WEBHOOK_SECRET is not set"),
])
def test_production_refuses_to_start_with_a_clear_message(monkeypatch, base_config, overrides, message):
    with pytest.raises(RuntimeError, match="SLOTGUARD_ENV=production refuses to start: .*" + message):
        production_app(monkeypatch, base_config, **overrides)


def test_production_starts_with_real_secrets(monkeypatch, base_config):
    app = production_app(monkeypatch, base_config)
    assert app.config["SECRET_KEY"] == STRONG_KEY and app.config["SESSION_COOKIE_SECURE"] is True


def test_the_env_example_key_is_refused_in_production():
    from core import PROJECT_ROOT
    from core.config import DEVELOPMENT_SECRET_KEYS

    with open(f"{PROJECT_ROOT}/.env.example", encoding="utf-8") as handle:
        (line,) = [line for line in handle if line.lstrip("# ").startswith("SECRET_KEY=")]
    assert line.strip().split("=", 1)[1] in DEVELOPMENT_SECRET_KEYS


def test_forwarded_headers_are_ignored_without_a_trusted_proxy(app, client):
    # A client on this host pretending to be someone else changes nothing.
    forged = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert forged.status_code == 200


def test_behind_one_trusted_proxy_the_client_address_is_the_forwarded_one(_migrated, base_config):
    app = create_app({**base_config, "TRUSTED_PROXY_COUNT": 1})
    with app.app_context():
        client = app.test_client()
        # The proxy (127.0.0.1) forwards a request from outside: /metrics is for this host only.
        assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403
        assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
        db.engine.dispose()
