"""SQLAlchemy 2 models of the CLPM relational schema (one MetaData for alembic).

Tables of the seed design: ``loops``, ``loop_config``, ``agg_1m``, ``agg_1h``, ``kpi_results``,
``diagnostic_results``, ``apc_attainment``, ``oscillation_cluster_runs``; alerts
(``alert_rules``, ``alert_events``, ``notification_outbox``, ``inbox_entries``); plus worker
coordination: ``loop_watermarks`` (aggregation progress), ``work_leases`` (replicas sharing
loops) and ``worker_heartbeats``; the work process: ``work_items`` (acknowledgements,
annotations, assignments) and the append-only ``audit_log``; scheduled reports
(``report_subscriptions``, ``report_deliveries``).
Raw samples never go to the relational store.

Aggregates keep, per bucket and field (pv, sp, op): count, mean, min, max, std (sample std,
ddof = 1, as InfluxDB's ``stddev()``), first, last; plus the dominant mode and the mode shares.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from clpm_shared.db.types import JsonDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LOOP_ID_LENGTH = 128
FIELDS = ("pv", "sp", "op")
STATISTICS = ("count", "mean", "min", "max", "std", "first", "last")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JsonDocument,
    }


class Loop(Base):
    """A control loop (tag) and where it sits in the plant; soft-deleted via ``deleted_at``."""

    __tablename__ = "loops"

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str | None] = mapped_column(String(128), index=True)
    area: Mapped[str | None] = mapped_column(String(128), index=True)
    engineering_units: Mapped[str | None] = mapped_column(String(32))
    data_source: Mapped[str | None] = mapped_column(String(16))
    """Where the samples come from: "simulated", "import", "opcua"; NULL when unknown."""
    data_source_detail: Mapped[str | None] = mapped_column(Text)
    """The imported file names, or the OPC UA endpoint and node."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column()


class LoopConfig(Base):
    """Per-loop analysis settings (KPI_SPEC ``LoopConfig``); NULL means "use the default"."""

    __tablename__ = "loop_config"

    loop_id: Mapped[str] = mapped_column(
        ForeignKey("loops.loop_id", ondelete="CASCADE"), primary_key=True
    )
    loop_type: Mapped[str] = mapped_column(String(32), default="other")
    criticality: Mapped[int] = mapped_column(Integer, default=3)
    normal_modes: Mapped[list[str] | None] = mapped_column(JsonDocument)
    op_lo: Mapped[float] = mapped_column(Float, default=0.0)
    op_hi: Mapped[float] = mapped_column(Float, default=100.0)
    sat_margin: Mapped[float | None] = mapped_column(Float)
    pv_lo: Mapped[float | None] = mapped_column(Float)
    pv_hi: Mapped[float | None] = mapped_column(Float)
    deadband: Mapped[float | None] = mapped_column(Float)
    dead_time_s: Mapped[float | None] = mapped_column(Float)
    apc_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    apc_modes: Mapped[list[str] | None] = mapped_column(JsonDocument)
    kpi_window_min: Mapped[int] = mapped_column(Integer, default=15)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    updated_by: Mapped[str | None] = mapped_column(String(256))


class _AggregateColumns:
    """Columns shared by the 1-minute and 1-hour aggregates."""

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)

    pv_count: Mapped[int] = mapped_column(Integer, default=0)
    pv_mean: Mapped[float | None] = mapped_column(Float)
    pv_min: Mapped[float | None] = mapped_column(Float)
    pv_max: Mapped[float | None] = mapped_column(Float)
    pv_std: Mapped[float | None] = mapped_column(Float)
    pv_first: Mapped[float | None] = mapped_column(Float)
    pv_last: Mapped[float | None] = mapped_column(Float)

    sp_count: Mapped[int] = mapped_column(Integer, default=0)
    sp_mean: Mapped[float | None] = mapped_column(Float)
    sp_min: Mapped[float | None] = mapped_column(Float)
    sp_max: Mapped[float | None] = mapped_column(Float)
    sp_std: Mapped[float | None] = mapped_column(Float)
    sp_first: Mapped[float | None] = mapped_column(Float)
    sp_last: Mapped[float | None] = mapped_column(Float)

    op_count: Mapped[int] = mapped_column(Integer, default=0)
    op_mean: Mapped[float | None] = mapped_column(Float)
    op_min: Mapped[float | None] = mapped_column(Float)
    op_max: Mapped[float | None] = mapped_column(Float)
    op_std: Mapped[float | None] = mapped_column(Float)
    op_first: Mapped[float | None] = mapped_column(Float)
    op_last: Mapped[float | None] = mapped_column(Float)

    mode_dominant: Mapped[str | None] = mapped_column(String(32))
    mode_shares: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Agg1m(_AggregateColumns, Base):
    """1-minute buckets (bucket start, UTC) per loop."""

    __tablename__ = "agg_1m"
    __table_args__ = (Index("ix_agg_1m_bucket_start", "bucket_start"),)


class Agg1h(_AggregateColumns, Base):
    """1-hour buckets rolled up from agg_1m (pooled variance, count-weighted means)."""

    __tablename__ = "agg_1h"
    __table_args__ = (Index("ix_agg_1h_bucket_start", "bucket_start"),)


class KpiResult(Base):
    """KPIs of one loop over one window (KPI_SPEC); NULL with a reason in ``reasons``."""

    __tablename__ = "kpi_results"
    __table_args__ = (Index("ix_kpi_results_window_start", "window_start"),)

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    window_end: Mapped[datetime] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    source: Mapped[str] = mapped_column(String(16), default="raw")
    samples: Mapped[int] = mapped_column(Integer, default=0)

    service_factor: Mapped[float | None] = mapped_column(Float)
    mode_shares: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    saturation: Mapped[float | None] = mapped_column(Float)
    sat_low: Mapped[float | None] = mapped_column(Float)
    sat_high: Mapped[float | None] = mapped_column(Float)
    error_mean: Mapped[float | None] = mapped_column(Float)
    error_std: Mapped[float | None] = mapped_column(Float)
    error_mean_pct: Mapped[float | None] = mapped_column(Float)
    error_std_pct: Mapped[float | None] = mapped_column(Float)
    span_source: Mapped[str | None] = mapped_column(String(16))
    iae_per_hour: Mapped[float | None] = mapped_column(Float)
    variability_index: Mapped[float | None] = mapped_column(Float)
    harris_index: Mapped[float | None] = mapped_column(Float)
    harris_assumed_delay: Mapped[bool | None] = mapped_column(Boolean)
    op_travel_per_hour: Mapped[float | None] = mapped_column(Float)
    op_reversals_per_hour: Mapped[float | None] = mapped_column(Float)
    oscillating: Mapped[bool | None] = mapped_column(Boolean)
    osc_period_s: Mapped[float | None] = mapped_column(Float)
    osc_regularity: Mapped[float | None] = mapped_column(Float)
    osc_amplitude: Mapped[float | None] = mapped_column(Float)
    osc_components: Mapped[list[Any] | None] = mapped_column(JsonDocument)
    sp_changes: Mapped[int | None] = mapped_column(Integer)
    overshoot_pct: Mapped[float | None] = mapped_column(Float)
    settling_time_s: Mapped[float | None] = mapped_column(Float)
    rise_time_s: Mapped[float | None] = mapped_column(Float)
    dq_completeness: Mapped[float | None] = mapped_column(Float)
    dq_flatline: Mapped[bool | None] = mapped_column(Boolean)
    dq_out_of_range: Mapped[float | None] = mapped_column(Float)
    dq_repeated: Mapped[float | None] = mapped_column(Float)
    dq_stale_s: Mapped[float | None] = mapped_column(Float)
    health_score: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="offline")
    main_problem: Mapped[str | None] = mapped_column(String(64))
    sub_scores: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    reasons: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)


class LoopAssessment(Base):
    """The latest rating of a loop over an assessment period (shift, day, week), recomputed
    by the KPI worker after each cycle from the period's kpi_results and findings."""

    __tablename__ = "loop_assessments"
    __table_args__ = (Index("ix_loop_assessments_period_health", "period", "health_score"),)

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    status: Mapped[str] = mapped_column(String(16), default="offline")
    health_score: Mapped[float | None] = mapped_column(Float)
    main_problem: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    status_shares: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    findings: Mapped[list[Any]] = mapped_column(JsonDocument)
    worst_window: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    windows_assessed: Mapped[int] = mapped_column(Integer, default=0)
    windows_total: Mapped[int] = mapped_column(Integer, default=0)
    previous_health_score: Mapped[float | None] = mapped_column(Float)
    previous_status: Mapped[str | None] = mapped_column(String(16))


class DiagnosticResult(Base):
    """One finding of the diagnostics service for a loop and analysis window."""

    __tablename__ = "diagnostic_results"
    __table_args__ = (Index("ix_diagnostic_results_created_at", "created_at"),)

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    window_end: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    severity: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    recommendation: Mapped[str] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16), default="on_demand")


class OscillationClusterRun(Base):
    """Plant-wide oscillation clusters of one window, computed on a schedule and served as is.

    A whole plant's clusters over hours take longer than a request may (raw samples of
    thousands of loops); the diagnostics service computes them for the page's usual windows
    every cycle and answers a request for such a window from the latest run.
    """

    __tablename__ = "oscillation_cluster_runs"
    __table_args__ = (Index("ix_oscillation_cluster_runs_window_end", "window_end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    window_start: Mapped[datetime] = mapped_column()
    window_end: Mapped[datetime] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    duration_s: Mapped[float] = mapped_column(Float)
    basis: Mapped[str] = mapped_column(String(16))
    loops_analysed: Mapped[int] = mapped_column(Integer)
    oscillating_loops: Mapped[int] = mapped_column(Integer)
    clusters: Mapped[dict[str, Any]] = mapped_column(JsonDocument)


class ApcAttainment(Base):
    """Share of a window in which an APC loop was available to APC, and why not otherwise."""

    __tablename__ = "apc_attainment"
    __table_args__ = (Index("ix_apc_attainment_window_start", "window_start"),)

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    window_end: Mapped[datetime] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    samples: Mapped[int] = mapped_column(Integer, default=0)
    attainment: Mapped[float | None] = mapped_column(Float)
    wrong_mode_share: Mapped[float | None] = mapped_column(Float)
    saturated_share: Mapped[float | None] = mapped_column(Float)
    bad_data_share: Mapped[float | None] = mapped_column(Float)


class LoopWatermark(Base):
    """How far the aggregation service has consumed raw data of a loop."""

    __tablename__ = "loop_watermarks"

    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    watermark: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class WorkLease(Base):
    """A replica's claim on a loop for a kind of work; expired leases may be taken over."""

    __tablename__ = "work_leases"
    __table_args__ = (Index("ix_work_leases_expires_at", "expires_at"),)

    work: Mapped[str] = mapped_column(String(32), primary_key=True)
    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column()


class WorkerHeartbeat(Base):
    """Last sign of life and cycle statistics of a worker instance."""

    __tablename__ = "worker_heartbeats"

    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column()
    stats: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)


class WorkItem(Base):
    """An acknowledgement, annotation or assignment on a loop, or on one finding category."""

    __tablename__ = "work_items"
    __table_args__ = (
        Index("ix_work_items_loop_id_state", "loop_id", "state"),
        Index("ix_work_items_assignee_state", "assignee", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    loop_id: Mapped[str] = mapped_column(
        ForeignKey("loops.loop_id", ondelete="CASCADE"), nullable=False
    )
    category: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    assignee: Mapped[str | None] = mapped_column(String(256))
    due_date: Mapped[date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="open")
    work_order: Mapped[str | None] = mapped_column(String(128))
    acknowledged_until: Mapped[datetime | None] = mapped_column()
    acknowledged_state: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AuditEntry(Base):
    """One recorded change: who, when, what, and the entity before and after (append-only:
    PostgreSQL and SQLite triggers refuse UPDATE and DELETE on the table)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(String(256), index=True)
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(256))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument)


class AlertRuleRow(Base):
    """An alert rule (see :class:`clpm_shared.alerts.AlertRule` for the meaning of each field)."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(8))
    scope_value: Mapped[str | None] = mapped_column(String(LOOP_ID_LENGTH))
    condition: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[float | None] = mapped_column(Float)
    for_s: Mapped[float] = mapped_column(Float, default=0.0)
    categories: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    statuses: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    services: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    renotify_s: Mapped[float] = mapped_column(Float, default=0.0)
    channels: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    recipients: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    emails: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    quiet_timezone: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_by: Mapped[str | None] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class AlertEvent(Base):
    """One alert: a rule's condition holding for a loop (``loop_id`` "" for fleet-wide ones).

    At most one pending/open row per (rule, loop, key): a partial unique index, so two
    evaluators racing for the same alert cannot both open it.
    """

    __tablename__ = "alert_events"
    __table_args__ = (
        Index(
            "uq_alert_events_active",
            "rule_id",
            "loop_id",
            "key",
            unique=True,
            postgresql_where=text("state <> 'cleared'"),
            sqlite_where=text("state <> 'cleared'"),
        ),
        Index("ix_alert_events_state", "state"),
        Index("ix_alert_events_last_seen", "last_seen"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH))
    key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()
    last_notified_at: Mapped[datetime | None] = mapped_column()
    notify_count: Mapped[int] = mapped_column(Integer, default=0)
    cleared_at: Mapped[datetime | None] = mapped_column()


class NotificationOutbox(Base):
    """A notification to deliver by e-mail or webhook (the outbox pattern): written in the
    transaction that opens, reminds or clears the alert; the notifier claims rows with a
    lease, sends them and marks them sent. ``idempotency_key`` travels with the message
    (webhook header, e-mail Message-ID) so a receiver can drop a repeat."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index("ix_notification_outbox_due", "sent_at", "next_attempt_at"),
        # deleting an alert (its rule's cascade) finds its rows by this, not by a scan
        Index("ix_notification_outbox_event_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    gave_up_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)


class InboxEntry(Base):
    """A notification in a user's in-app inbox."""

    __tablename__ = "inbox_entries"
    __table_args__ = (
        Index("ix_inbox_entries_user_read", "username", "read_at"),
        Index("ix_inbox_entries_event_id", "event_id"),  # as the outbox's
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(256))
    event_id: Mapped[int] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"))
    rule_id: Mapped[int] = mapped_column(Integer)
    loop_id: Mapped[str] = mapped_column(String(LOOP_ID_LENGTH))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    read_at: Mapped[datetime | None] = mapped_column()


metadata = Base.metadata


class ReportSubscription(Base):
    """A user's subscription to the daily or weekly fleet report by e-mail (PDF, XLSX or
    both), for the whole fleet or one unit / area."""

    __tablename__ = "report_subscriptions"
    __table_args__ = (Index("ix_report_subscriptions_username", "username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(256))
    email: Mapped[str] = mapped_column(String(320))
    period: Mapped[str] = mapped_column(String(8))
    format: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(128))
    area: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ReportDelivery(Base):
    """One scheduled report e-mail of a subscription (its outbox row): created once per
    subscription and schedule slot (``due_at``, unique with the subscription, so a restarted
    or second worker never sends a slot twice), retried with backoff until sent or given up."""

    __tablename__ = "report_deliveries"
    __table_args__ = (
        Index("uq_report_deliveries_slot", "subscription_id", "due_at", unique=True),
        Index("ix_report_deliveries_due", "sent_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("report_subscriptions.id", ondelete="CASCADE")
    )
    due_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    gave_up_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    period_start: Mapped[datetime | None] = mapped_column()
    period_end: Mapped[datetime | None] = mapped_column()
