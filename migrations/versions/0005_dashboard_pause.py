"""Dashboard and queue view: emit-to-delivery latency in the rollups, a per-day rollup, pausing an endpoint.

Revision ID: 0005_dashboard_pause
Revises: 0004_signing_rotation

"""
from alembic import op
import sqlalchemy as sa

revision = "0005_dashboard_pause"
down_revision = "0004_signing_rotation"
branch_labels = None
depends_on = None

LATENCY_BUCKETS = 15  # l0..l14, see webapp.storage.models.LATENCY_BUCKETS_MS


def latency_columns():
    return [sa.Column("latency_ms", sa.BigInteger(), nullable=False, server_default="0"),
            *[sa.Column(f"l{i}", sa.Integer(), nullable=False, server_default="0") for i in range(LATENCY_BUCKETS)]]


def upgrade():
    with op.batch_alter_table("endpoint") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("paused_by", sa.String(length=255), nullable=True))
    for table in ("stats_minute", "stats_hour"):
        with op.batch_alter_table(table) as batch:
            for column in latency_columns():
                batch.add_column(column)
    op.create_table(
        "stats_day",
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        *[sa.Column(column, sa.Integer(), nullable=False) for column in
          ("attempts", "succeeded", "done", "failed", "retried")],
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        *[sa.Column(f"d{i}", sa.Integer(), nullable=False) for i in range(11)],
        *latency_columns(),
        sa.PrimaryKeyConstraint("endpoint_id", "start"),
    )
    # The days so far, from the hours (24 rows per endpoint and day: small).
    day = ("date_trunc('day', start)" if op.get_bind().dialect.name == "postgresql"
           else "strftime('%Y-%m-%d 00:00:00.000000', start)")
    summed = ["attempts", "succeeded", "done", "failed", "retried", "duration_ms", *[f"d{i}" for i in range(11)]]
    op.execute(f"INSERT INTO stats_day (endpoint_id, start, {', '.join(summed)}) "
               f"SELECT endpoint_id, {day}, {', '.join(f'sum({c})' for c in summed)} FROM stats_hour "
               f"GROUP BY endpoint_id, {day}")


def downgrade():
    op.drop_table("stats_day")
    for table in ("stats_hour", "stats_minute"):
        with op.batch_alter_table(table) as batch:
            for column in reversed(latency_columns()):
                batch.drop_column(column.name)
    with op.batch_alter_table("endpoint") as batch:
        batch.drop_column("paused_by")
        batch.drop_column("paused_at")
