"""loops data source: where a loop's samples come from (simulated, import, opcua)

Revision ID: 7b3d9e1f2a64
Revises: 11f0b02b82b6
Create Date: 2026-12-05 17:20:00.000000+00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7b3d9e1f2a64"
down_revision: str | Sequence[str] | None = "11f0b02b82b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("loops") as batch:
        batch.add_column(sa.Column("data_source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("data_source_detail", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("loops") as batch:
        batch.drop_column("data_source_detail")
        batch.drop_column("data_source")
