"""kpi_results.osc_components: every significant oscillation of the window

Revision ID: 8c2f4a6b1d37
Revises: 7a1e2b3c4d5e
Create Date: 2026-12-05 19:00:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "8c2f4a6b1d37"
down_revision: str | Sequence[str] | None = "7a1e2b3c4d5e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Rows stored before this revision keep NULL: their components were not computed."""
    with op.batch_alter_table("kpi_results", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "osc_components",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("kpi_results", schema=None) as batch_op:
        batch_op.drop_column("osc_components")
