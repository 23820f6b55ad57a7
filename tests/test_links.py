"""Links point at the server people reached: the base URL in development and production."""

from __future__ import annotations

import logging

import pytest

from sciweek import create_app
from sciweek.checkin.codes import parse_scanned_code
from sciweek.config import ConfigError
from sciweek.extensions import db
from sciweek.links import site_base_url, site_base_urls
from sciweek.models import Activity
from sciweek.notifications import invitations, optout

SECRET = "A" * 32


def _dev_app(monkeypatch, tmp_path, **env):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SCIWEEK_ENV", raising=False)
    monkeypatch.delenv("SCIWEEK_BASE_URL", raising=False)
    monkeypatch.delenv("SCIWEEK_OTHER_BASE_URLS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_app({"TESTING": True})


def test_development_links_follow_the_host_and_port_served(monkeypatch, tmp_path):
    app = _dev_app(monkeypatch, tmp_path)
    with app.test_request_context("/", base_url="http://192.168.1.20:5077"):
        assert site_base_url() == "http://192.168.1.20:5077"
    with app.test_request_context("/", base_url="http://127.0.0.1:5077"):
        assert site_base_url() == "http://127.0.0.1:5077"
    # Outside a request (a CLI command): the documented local address.
    with app.app_context():
        assert site_base_url() == "http://127.0.0.1:5000"


def test_a_set_base_url_wins_over_the_request(monkeypatch, tmp_path):
    app = _dev_app(monkeypatch, tmp_path, SCIWEEK_BASE_URL="https://kp.example.gov.cn/")
    with app.test_request_context("/", base_url="http://127.0.0.1:5077"):
        assert site_base_url() == "https://kp.example.gov.cn"


def test_production_requires_a_base_url(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_ENV", "production")
    monkeypatch.setenv("SCIWEEK_SECRET_KEY", "s" * 40)
    monkeypatch.delenv("SCIWEEK_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="SCIWEEK_BASE_URL"):
        create_app()


def test_production_warns_once_about_a_request_for_another_host(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_ENV", "production")
    monkeypatch.setenv("SCIWEEK_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("SCIWEEK_BASE_URL", "https://kp.example.gov.cn")
    monkeypatch.setenv("SCIWEEK_OTHER_BASE_URLS", "http://10.0.0.5:8000")
    app = create_app()
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="sciweek.links"):
        client.get("/healthz", base_url="https://kp.example.gov.cn")
        client.get("/healthz", base_url="http://10.0.0.5:8000")
        assert not caplog.records
        client.get("/healthz", base_url="http://wrong.example:8080")
        client.get("/healthz", base_url="http://wrong.example:8080")
        client.get("/healthz", base_url="http://other.example")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "wrong.example:8080" in warnings[0]
    assert "SCIWEEK_BASE_URL" in warnings[0]
    with app.test_request_context("/", base_url="http://wrong.example:8080"):
        assert site_base_url() == "https://kp.example.gov.cn"


def test_the_scanner_accepts_ticket_urls_under_every_configured_host(monkeypatch, tmp_path):
    app = _dev_app(
        monkeypatch,
        tmp_path,
        SCIWEEK_BASE_URL="https://kp.example.gov.cn",
        SCIWEEK_OTHER_BASE_URLS="http://10.0.0.5:8000, https://old.example.cn/sub",
    )
    with app.test_request_context("/", base_url="http://10.0.0.5:8000"):
        urls = site_base_urls()
    assert urls == (
        "https://kp.example.gov.cn",
        "http://10.0.0.5:8000",
        "https://old.example.cn/sub",
    )
    for url in (
        f"https://kp.example.gov.cn/t/{SECRET}",
        f"http://10.0.0.5:8000/t/{SECRET}",
        f"https://old.example.cn/sub/t/{SECRET}",
    ):
        code = parse_scanned_code(url, urls)
        assert code is not None, url
        assert code.value == SECRET, url
    for url in (f"https://evil.example/t/{SECRET}", f"https://old.example.cn/t/{SECRET}"):
        assert parse_scanned_code(url, urls) is None, url


def test_development_scanner_accepts_the_served_host(monkeypatch, tmp_path):
    app = _dev_app(monkeypatch, tmp_path)
    with app.test_request_context("/", base_url="http://127.0.0.1:5077"):
        urls = site_base_urls()
    assert urls[0] == "http://127.0.0.1:5077"
    assert parse_scanned_code(f"http://127.0.0.1:5077/t/{SECRET}", urls) is not None
    assert parse_scanned_code(f"http://127.0.0.1:5000/t/{SECRET}", urls) is None


def test_sms_links_are_absolute_in_development_without_a_base_url(monkeypatch, tmp_path):
    """SMS leave the site: an opt-out or invitation link must carry the host, also in
    development with SCIWEEK_BASE_URL unset (it was empty: the text said "/u/…")."""
    app = _dev_app(monkeypatch, tmp_path)
    with app.test_request_context("/", base_url="http://127.0.0.1:5077"):
        assert optout.link("abc") == "http://127.0.0.1:5077/u/abc"
        params = invitations.invitation_params(Activity(id=7, title="果树修剪", venue="村委会"))
        assert params["link"] == "http://127.0.0.1:5077/activities/7"
    with app.app_context():  # a worker, outside any request: the local address
        assert optout.link("abc") == "http://127.0.0.1:5000/u/abc"


def test_feeds_and_subscribe_links_in_development_follow_the_host_served(monkeypatch, tmp_path):
    """Without SCIWEEK_BASE_URL the listing's subscribe links were relative (webcal:///…) and
    a feed's links and cached body would be shared between the hosts a site is reached at."""
    app = _dev_app(monkeypatch, tmp_path)
    with app.app_context():
        db.create_all()
    client = app.test_client()
    etags = set()
    for base in ("http://127.0.0.1:5077", "http://192.168.1.20:5077"):
        host = base.removeprefix("http://")
        page = client.get("/", base_url=base).get_data(as_text=True)
        assert f"webcal://{host}/calendar.ics" in page
        feed = client.get("/calendar.ics", base_url=base)
        assert feed.status_code == 200
        etags.add(feed.headers["ETag"])
    assert len(etags) == 2
