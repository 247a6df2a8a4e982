"""OAuth2 clients, refresh token families and revocations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["downgrade", "upgrade"]

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``authmw_clients``, ``authmw_refresh_tokens`` and ``authmw_revocations``."""
    op.create_table(
        "authmw_clients",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("team", sa.String(150), nullable=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("redirect_uris", sa.Text, nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("first_party", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=True),
        sa.Column("previous_secret_hash", sa.String(128), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "authmw_refresh_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("family_id", sa.String(32), nullable=False),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(150), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("credential_epoch", sa.Integer, nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idle_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_authmw_refresh_tokens_family_id", "authmw_refresh_tokens", ["family_id"])
    op.create_index(
        "ix_authmw_refresh_tokens_subject_client_id",
        "authmw_refresh_tokens",
        ["subject", "client_id"],
    )
    op.create_table(
        "authmw_revocations",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("subject", sa.String(150), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_authmw_revocations_revoked_at", "authmw_revocations", ["revoked_at"])


def downgrade() -> None:
    """Drop the tables (and every client, refresh token and revocation in them)."""
    op.drop_index("ix_authmw_revocations_revoked_at", table_name="authmw_revocations")
    op.drop_table("authmw_revocations")
    op.drop_index("ix_authmw_refresh_tokens_subject_client_id", table_name="authmw_refresh_tokens")
    op.drop_index("ix_authmw_refresh_tokens_family_id", table_name="authmw_refresh_tokens")
    op.drop_table("authmw_refresh_tokens")
    op.drop_table("authmw_clients")
