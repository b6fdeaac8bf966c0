"""On PostgreSQL, attempt's and pending_message's foreign keys to message are no longer enforced by the database.

PostgreSQL checks each with a query per inserted row that also locks the message's row (see
MESSAGE_REFERENCES in webapp/storage/models.py for why the product's own writes keep them true,
and retention for who deletes the rows a message's delete used to cascade to). SQLite keeps both.

Revision ID: 0009_attempt_pending_references
Revises: 0008_message_references
"""
from alembic import op
import sqlalchemy as sa

revision = "0009_attempt_pending_references"
down_revision = "0008_message_references"
branch_labels = None
depends_on = None

REFERRING = ("attempt", "pending_message")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table in REFERRING:
        for key in sa.inspect(bind).get_foreign_keys(table):
            if key["referred_table"] == "message":
                op.drop_constraint(key["name"], table, type_="foreignkey")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in REFERRING:
        op.create_foreign_key(f"{table}_message_id_fkey", table, "message", ["message_id"], ["id"], ondelete="CASCADE")
