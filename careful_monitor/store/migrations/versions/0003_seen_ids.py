"""Event-id dedup: the last `limits.dedup_ids` event ids seen per model, as 64-bit hashes.

An append-only table (one row per id, pruned by sequence), so a batch adds its ids in the
transaction that stores its windows and offsets, and nothing is rewritten whole.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seen_ids",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("id_hash", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("model", "id_hash", name="pk_seen_ids"),
    )
    op.create_index("ix_seen_ids_model_seq", "seen_ids", ["model", "seq"])


def downgrade() -> None:
    op.drop_index("ix_seen_ids_model_seq", table_name="seen_ids")
    op.drop_table("seen_ids")
