"""oscillation cluster runs: plant-wide clusters computed on a schedule

Revision ID: 5c1e0a7d93b2
Revises: 5a1e7c3d9b20
Create Date: 2026-12-05 12:30:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clpm_shared.db.types

# revision identifiers, used by Alembic.
revision: str = "5c1e0a7d93b2"
down_revision: str | Sequence[str] | None = "5a1e7c3d9b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "oscillation_cluster_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("window_start", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("window_end", clpm_shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "computed_at",
            clpm_shared.db.types.UTCDateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("loops_analysed", sa.Integer(), nullable=False),
        sa.Column("oscillating_loops", sa.Integer(), nullable=False),
        sa.Column(
            "clusters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oscillation_cluster_runs")),
    )
    with op.batch_alter_table("oscillation_cluster_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_oscillation_cluster_runs_window_end", ["window_end"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("oscillation_cluster_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_oscillation_cluster_runs_window_end")
    op.drop_table("oscillation_cluster_runs")
