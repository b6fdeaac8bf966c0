"""Endpoint health, the per-minute and per-hour delivery rollups, the pending-messages index.

Revision ID: 0002
Revises: 0001

"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HEALTH_COLUMNS = [
    sa.Column("health", sa.String(length=10), nullable=False, server_default="healthy"),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("failing_since", sa.DateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("last_error_at", sa.DateTime(), nullable=True),
    sa.Column("last_success_at", sa.DateTime(), nullable=True),
    sa.Column("retry_after_until", sa.DateTime(), nullable=True),
    sa.Column("disabled_reason", sa.String(length=255), nullable=True),
    sa.Column("disabled_by", sa.String(length=255), nullable=True),
    sa.Column("disabled_at", sa.DateTime(), nullable=True),
    sa.Column("outage_from", sa.DateTime(), nullable=True),
    sa.Column("outage_to", sa.DateTime(), nullable=True),
    sa.Column("notified_state", sa.String(length=20), nullable=True),
]


def stats_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        *[sa.Column(column, sa.Integer(), nullable=False) for column in
          ("attempts", "succeeded", "done", "failed", "retried")],
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        *[sa.Column(f"d{i}", sa.Integer(), nullable=False) for i in range(11)],
        sa.PrimaryKeyConstraint("endpoint_id", "start"),
    )


def upgrade():
    with op.batch_alter_table("endpoint") as batch:
        for column in HEALTH_COLUMNS:
            batch.add_column(column)
    stats_table("stats_minute")
    stats_table("stats_hour")
    op.create_index(
        "ix_message_pending", "message", ["endpoint_id", "status", "next_attempt_at"],
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
    )


def downgrade():
    op.drop_index("ix_message_pending", table_name="message")
    op.drop_table("stats_hour")
    op.drop_table("stats_minute")
    with op.batch_alter_table("endpoint") as batch:
        for column in reversed(HEALTH_COLUMNS):
            batch.drop_column(column.name)
