"""Event-id dedup: the event ids each batch recorded per model, as 64-bit hashes.

One row per batch (model, first_seq, last_seq, id_hashes: little-endian int64 bytes of the ids of
seqs first_seq..last_seq), added in the transaction that stores that batch's windows, engine state
and offsets; rows whose ids all fell out of the model's last `limits.dedup_ids` are deleted. Nothing
is rewritten whole.

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
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("id_hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("model", "first_seq", name="pk_seen_ids"),
    )
    op.create_index("ix_seen_ids_model_last_seq", "seen_ids", ["model", "last_seq"])


def downgrade() -> None:
    op.drop_index("ix_seen_ids_model_last_seq", table_name="seen_ids")
    op.drop_table("seen_ids")
