"""Cron schedule of the KPI worker (APScheduler, KPI_CRON_SCHEDULE in crontab syntax, UTC)."""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from clpm_kpi_worker.reporting import ReportMailer
from clpm_kpi_worker.worker import KpiWorker
from clpm_shared.notify import Notifier

log = logging.getLogger("clpm_kpi_worker.scheduler")


HEARTBEAT_INTERVAL_S = 60.0
"""Seconds between heartbeats outside cycles (the health probe allows a few missed ones)."""


def build_scheduler(worker: KpiWorker) -> AsyncIOScheduler:
    """The heartbeat job (:meth:`KpiWorker.beat` every :data:`HEARTBEAT_INTERVAL_S`); the
    cycles are added by :func:`schedule_cycles` once the start-up catch-up is done."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        worker.beat,
        IntervalTrigger(seconds=HEARTBEAT_INTERVAL_S, timezone="UTC"),
        id="kpi-heartbeat",
        max_instances=1,
        coalesce=True,
    )
    return scheduler


def schedule_cycles(scheduler: AsyncIOScheduler, worker: KpiWorker, crontab: str) -> None:
    """:meth:`KpiWorker.run_cycle` on ``crontab``; runs never overlap (max_instances=1) and a
    run delayed by a busy machine is still run once (coalesce) within an hour."""
    scheduler.add_job(
        worker.run_cycle,
        CronTrigger.from_crontab(crontab, timezone="UTC"),
        id="kpi-cycle",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )


def schedule_notifier(scheduler: AsyncIOScheduler, notifier: Notifier) -> None:
    """A pass of the alert notifier over the outbox every ALERT_NOTIFY_INTERVAL_S, beside
    (never inside) the cycles: a slow mail server or webhook delays only its own rows."""
    scheduler.add_job(
        notifier.run_once,
        IntervalTrigger(seconds=notifier.settings.alert_notify_interval_s, timezone="UTC"),
        id="alert-notifier",
        max_instances=1,
        coalesce=True,
    )


def schedule_reports(scheduler: AsyncIOScheduler, mailer: ReportMailer) -> None:
    """A pass of the report mailer every REPORT_CHECK_INTERVAL_S, beside the cycles (a report
    is rendered in a worker thread; a slow mail server delays only the reports)."""
    scheduler.add_job(
        mailer.run_once,
        IntervalTrigger(seconds=mailer.settings.report_check_interval_s, timezone="UTC"),
        id="report-mailer",
        max_instances=1,
        coalesce=True,
    )


async def run_forever(
    worker: KpiWorker,
    crontab: str,
    notifier: Notifier | None = None,
    reports: ReportMailer | None = None,
) -> None:
    """Catch up at start (bounded), then run on schedule until SIGINT/SIGTERM; the notifier
    and the report mailer (if any) deliver from the start."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("kpi-worker started", extra={"schedule": crontab, "instance": worker.instance_id})
    scheduler = build_scheduler(worker)
    if notifier is not None:
        schedule_notifier(scheduler, notifier)
    if reports is not None:
        schedule_reports(scheduler, reports)
    scheduler.start()
    try:
        await worker.beat()
        await worker.run_cycle()  # catch up missed windows after downtime (beats go on meanwhile)
        schedule_cycles(scheduler, worker, crontab)
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await worker.release()
        log.info("kpi-worker stopped")
