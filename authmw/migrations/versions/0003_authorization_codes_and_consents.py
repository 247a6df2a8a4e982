"""Authorization codes and consents (the authorization-code grant).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

__all__ = ["downgrade", "upgrade"]

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create ``authmw_authorization_codes`` and ``authmw_consents``."""
    op.create_table(
        "authmw_authorization_codes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("client_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(150), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("credential_epoch", sa.Integer, nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("family_id", sa.String(32), nullable=True),
    )
    op.create_table(
        "authmw_consents",
        sa.Column("subject", sa.String(150), primary_key=True),
        sa.Column("client_id", sa.String(32), primary_key=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_authmw_consents_client_id", "authmw_consents", ["client_id"])


def downgrade() -> None:
    """Drop the tables (and every code and consent in them)."""
    op.drop_index("ix_authmw_consents_client_id", table_name="authmw_consents")
    op.drop_table("authmw_consents")
    op.drop_table("authmw_authorization_codes")
