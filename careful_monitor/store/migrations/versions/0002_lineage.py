"""Lineage: which datasets, with what shares, trained each recorded model version (`lineage record`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lineage",
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["dataset"], ["datasets.name"], name="fk_lineage_dataset_datasets"),
        sa.PrimaryKeyConstraint("model", "version", "dataset", name="pk_lineage"),
    )


def downgrade() -> None:
    op.drop_table("lineage")
