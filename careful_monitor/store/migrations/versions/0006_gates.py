"""Pre-flight gates: the last gate report of each dataset (careful_monitor.gates), as JSON.

Written when a synthetic set is registered and by `datasets check`; one row per dataset, replaced.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gate_reports",
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dataset"], ["datasets.name"], name="fk_gate_reports_dataset_datasets"),
        sa.PrimaryKeyConstraint("dataset", name="pk_gate_reports"),
    )


def downgrade() -> None:
    op.drop_table("gate_reports")
