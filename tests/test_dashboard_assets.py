"""htmx and Chart.js: pinned, from the CDN with integrity hashes or vendored."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from core import PROJECT_ROOT, create_app
from core.extensions import db
from core.models import Role
from dashboard.assets import SCRIPTS
from tests.dashboard_support import make_user, sign_in, text_of


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_vendored_file_matches_the_cdn_integrity_hash(name):
    script = SCRIPTS[name]
    with open(os.path.join(PROJECT_ROOT, "static", script.vendored), "rb") as f:
        content = f.read()
    digest = base64.b64encode(hashlib.sha384(content).digest()).decode()
    assert script.integrity == f"sha384-{digest}"
    assert f"@{script.version}/" in script.cdn_url and script.version in script.vendored
    # The file is the release it claims to be.
    assert script.version.encode() in content


def test_local_assets_are_served_from_static(client):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get("/dashboard/trends"))
    assert '<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>' in html
    assert '<script src="/static/vendor/chart-4.6.1.umd.min.js" defer></script>' in html
    assert "cdn.jsdelivr.net" not in html
    assert client.get("/static/vendor/htmx-2.0.11.min.js").status_code == 200


def test_cdn_assets_carry_integrity_and_crossorigin(app_config):
    app = create_app({**app_config, "ASSETS_FROM": "cdn"})
    try:
        with app.app_context(), app.test_request_context():
            from dashboard.assets import script_tag

            tag = str(script_tag("htmx"))
        assert tag == ('<script src="https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js" '
                       f'integrity="{SCRIPTS["htmx"].integrity}" crossorigin="anonymous" '
                       'referrerpolicy="no-referrer" defer></script>')
    finally:
        with app.app_context():
            db.engine.dispose()


def test_unknown_asset_source_stops_the_app(app_config):
    with pytest.raises(RuntimeError, match="ASSETS_FROM must be one of cdn, local, got 'usb'"):
        create_app({**app_config, "ASSETS_FROM": "usb"})


def test_base_layout_sends_the_csrf_token_with_htmx(client):
    sign_in(client, make_user(Role.VIEWER))
    html = text_of(client.get("/dashboard/queues"))
    assert '<meta name="csrf-token" content="' in html
    assert "<body hx-headers='{\"X-CSRFToken\": \"" in html
    assert '"historyCacheSize": 0' in html and '{"code": "422", "swap": true}' in html
