"""report subscriptions and their scheduled deliveries

Revision ID: 9d4e6f8a2c51
Revises: 8c2f4a6b1d37
Create Date: 2026-12-05 23:40:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clpm_shared.db.types

# revision identifiers, used by Alembic.
revision: str = "9d4e6f8a2c51"
down_revision: str | Sequence[str] | None = "8c2f4a6b1d37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "report_subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=256), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("unit", sa.String(length=128), nullable=True),
        sa.Column("area", sa.String(length=128), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            clpm_shared.db.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_subscriptions")),
    )
    with op.batch_alter_table("report_subscriptions", schema=None) as batch_op:
        batch_op.create_index("ix_report_subscriptions_username", ["username"], unique=False)

    op.create_table(
        "report_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("due_at", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            clpm_shared.db.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_until", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("sent_at", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("period_start", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("period_end", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["report_subscriptions.id"],
            name=op.f("fk_report_deliveries_subscription_id_report_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_deliveries")),
    )
    with op.batch_alter_table("report_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_report_deliveries_due", ["sent_at", "next_attempt_at"])
        batch_op.create_index(
            "uq_report_deliveries_slot", ["subscription_id", "due_at"], unique=True
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("report_deliveries", schema=None) as batch_op:
        batch_op.drop_index("uq_report_deliveries_slot")
        batch_op.drop_index("ix_report_deliveries_due")
    op.drop_table("report_deliveries")
    with op.batch_alter_table("report_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_report_subscriptions_username")
    op.drop_table("report_subscriptions")
