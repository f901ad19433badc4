"""Passwords inside URLs (database, broker) are masked at the logger too."""

from skyfleet.logs import redact


def test_url_passwords_are_masked() -> None:
    assert redact("cannot connect to postgresql+psycopg://u:db-pw-77@h:5432/db") == \
        "cannot connect to postgresql+psycopg://u:***@h:5432/db"
    assert redact("broker amqp://guest:guest-pw@mq:5672// down") == "broker amqp://guest:***@mq:5672// down"
    assert redact("redis://:r-pw@h:6379/0") == "redis://:***@h:6379/0"


def test_urls_without_password_are_unchanged() -> None:
    for text in ("http://127.0.0.1:8080/v1/sites", "amqp://guest@mq//", "sqlite:////var/skyfleet.db",
                 "http://[::1]:5000/v3"):
        assert redact(text) == text
