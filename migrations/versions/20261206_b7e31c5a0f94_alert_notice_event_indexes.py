"""indexes on the alert of outbox rows and inbox entries

Deleting an alert rule cascades to its alerts and from them to their outbox rows and inbox
entries; without an index on ``event_id`` each deleted alert scanned both tables.

Revision ID: b7e31c5a0f94
Revises: 9d4e6f8a2c51
Create Date: 2026-12-06 02:30:00.000000+00:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7e31c5a0f94"
down_revision: str | Sequence[str] | None = "9d4e6f8a2c51"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_notification_outbox_event_id", ["event_id"], unique=False)
    with op.batch_alter_table("inbox_entries", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_entries_event_id", ["event_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("inbox_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_entries_event_id")
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_outbox_event_id")
