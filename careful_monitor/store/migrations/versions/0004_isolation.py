"""Evaluation isolation: per-dataset row hashes and MinHash signatures (in chunks), and per-pair results.

Signatures are computed at registration and stored as array bytes per chunk of rows, never the rows;
`datasets isolation` joins them on LSH band keys (careful_monitor.isolation).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "isolation_sets",
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset"], ["datasets.name"], name="fk_isolation_sets_dataset_datasets"),
        sa.PrimaryKeyConstraint("dataset", name="pk_isolation_sets"),
    )
    op.create_table(
        "isolation_chunks",
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.BigInteger(), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("row_hashes", sa.LargeBinary(), nullable=False),
        sa.Column("words", sa.LargeBinary(), nullable=False),
        sa.Column("signatures", sa.LargeBinary(), nullable=False),
        sa.Column("gram_rows", sa.LargeBinary(), nullable=False),
        sa.Column("gram_hashes", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["dataset"], ["datasets.name"], name="fk_isolation_chunks_dataset_datasets"),
        sa.PrimaryKeyConstraint("dataset", "chunk", name="pk_isolation_chunks"),
    )
    op.create_table(
        "isolation_results",
        sa.Column("evaluation", sa.String(200), nullable=False),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("rows_checked", sa.BigInteger(), nullable=False),
        sa.Column("exact", sa.BigInteger(), nullable=False),
        sa.Column("near", sa.BigInteger(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["evaluation"], ["datasets.name"], name="fk_isolation_results_evaluation_datasets"),
        sa.ForeignKeyConstraint(["dataset"], ["datasets.name"], name="fk_isolation_results_dataset_datasets"),
        sa.PrimaryKeyConstraint("evaluation", "dataset", name="pk_isolation_results"),
    )


def downgrade() -> None:
    op.drop_table("isolation_results")
    op.drop_table("isolation_chunks")
    op.drop_table("isolation_sets")
