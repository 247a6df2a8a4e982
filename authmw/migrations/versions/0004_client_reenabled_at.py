"""When each client or app was last enabled again after being disabled.

What was issued to a client before then stays dead. Existing clients get none:
a client disabled when the database is upgraded gets it when it is enabled.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["downgrade", "upgrade"]

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``authmw_clients.reenabled_at``."""
    op.add_column(
        "authmw_clients", sa.Column("reenabled_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Drop ``authmw_clients.reenabled_at``."""
    # Batch mode: SQLite rebuilds the table where it cannot drop the column in place.
    with op.batch_alter_table("authmw_clients") as batch:
        batch.drop_column("reenabled_at")
