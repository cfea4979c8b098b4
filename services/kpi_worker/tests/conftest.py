"""Fixtures of the KPI worker's tests: the notification receivers (SMTP, webhook)."""

from tests.harness.notification_receivers import smtp_server, webhook_receiver

__all__ = ["smtp_server", "webhook_receiver"]
