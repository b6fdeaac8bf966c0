"""The log's customer filter matches by prefix: on PostgreSQL its index uses varchar_pattern_ops.

PostgreSQL serves ``customer LIKE 'abc%'`` from a btree index only when the index
compares bytes (varchar_pattern_ops or the C collation); the default collation's
order is not a prefix order. Such an index still serves ``customer = 'x'``.
SQLite needs nothing: its GLOB prefix seeks on the existing BINARY index.
Built CONCURRENTLY, so writers are not blocked on a large log.

Revision ID: 0006_customer_prefix
Revises: 0005_dashboard_pause
"""
from alembic import op

revision = "0006_customer_prefix"
down_revision = "0005_dashboard_pause"
branch_labels = None
depends_on = None


def _rebuild(opclass: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_message_customer_new")
        op.execute(f"CREATE INDEX CONCURRENTLY ix_message_customer_new ON message (customer {opclass}, id)")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_message_customer_id")
        op.execute("ALTER INDEX ix_message_customer_new RENAME TO ix_message_customer_id")


def upgrade():
    _rebuild("varchar_pattern_ops")


def downgrade():
    _rebuild("")
