"""Users and API keys: the schema before OAuth2.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

A database made by a release from before migrations holds these tables, or the
later ones too; :mod:`authmw.store.migrations` recognises which and records it.
A revision is a snapshot: it spells its tables out instead of importing
``authmw.store.sql``, whose tables keep changing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["downgrade", "upgrade"]

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``authmw_users`` and ``authmw_api_keys``."""
    op.create_table(
        "authmw_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("teams", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("credential_epoch", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "authmw_api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("authmw_users.id"), nullable=True),
        sa.Column("team", sa.String(150), nullable=True),
        sa.Column("scopes", sa.Text, nullable=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaced_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_authmw_api_keys_owner_id", "authmw_api_keys", ["owner_id"])
    op.create_index("ix_authmw_api_keys_team", "authmw_api_keys", ["team"])


def downgrade() -> None:
    """Drop the tables (and every user and key in them)."""
    op.drop_index("ix_authmw_api_keys_team", table_name="authmw_api_keys")
    op.drop_index("ix_authmw_api_keys_owner_id", table_name="authmw_api_keys")
    op.drop_table("authmw_api_keys")
    op.drop_table("authmw_users")
