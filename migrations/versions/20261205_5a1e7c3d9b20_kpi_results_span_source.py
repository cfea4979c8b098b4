"""kpi_results.span_source: whether the window's % of span is of the configured PV range

Revision ID: 5a1e7c3d9b20
Revises: 6dc02bf9fd42
Create Date: 2026-12-05 12:30:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5a1e7c3d9b20"
down_revision: str | Sequence[str] | None = "6dc02bf9fd42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Rows stored before this revision keep NULL: their span source is not known."""
    with op.batch_alter_table("kpi_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("span_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kpi_results", schema=None) as batch_op:
        batch_op.drop_column("span_source")
