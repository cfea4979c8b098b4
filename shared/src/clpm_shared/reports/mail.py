"""The e-mail that carries a fleet report: a short summary in the body, the PDF and / or XLSX
attached (``multipart/mixed``, built with the standard library's :class:`EmailMessage`)."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from clpm_shared.reports.content import FleetReport

Attachment = tuple[str, str, bytes]
"""``(file name, MIME type "main/sub", content)``."""


def _line(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def report_body(report: FleetReport, worst: int = 10) -> str:
    """The plain-text summary: fleet health against the previous period, the worst loops."""
    change = "" if report.health_change is None else f" ({report.health_change:+.1f})"
    lines = [
        report.title,
        f"Period: {report.period_label}",
        "",
        f"Fleet health: {_line(report.health_score)}{change}, "
        f"previous period {_line(report.previous_health_score)}",
        "Loops: "
        + ", ".join(f"{count} {status}" for status, count in report.status_counts.items()),
        f"Work items: {report.work_items.opened} opened, {report.work_items.closed} closed, "
        f"{report.work_items.open_now} open",
        "",
        "Worst loops:",
    ]
    lines.extend(
        f"  {row.rank}. {row.loop_id}  health {_line(row.health_score)}  {row.status}"
        f"  {row.main_problem or ''}".rstrip()
        for row in report.bad_actors[:worst]
    )
    if not report.bad_actors:
        lines.append("  (no loop has a rating over this period)")
    return "\n".join(lines) + "\n"


def report_message(
    sender: str,
    to: str,
    report: FleetReport,
    attachments: Sequence[Attachment],
    idempotency_key: str,
) -> EmailMessage:
    """The report e-mail; its Message-ID carries the idempotency key (one per subscription
    and schedule slot), as the alert e-mails do."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"CLPM {report.title.lower()}: {report.period_label}"
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = f"<{idempotency_key}@clpm>"
    message["X-CLPM-Idempotency-Key"] = idempotency_key
    message.set_content(report_body(report))
    for filename, mime, content in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message
