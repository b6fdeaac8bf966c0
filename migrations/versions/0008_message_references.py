"""On PostgreSQL, message's foreign keys to event and endpoint are no longer enforced by the database.

PostgreSQL checks each with a query per inserted message (see MESSAGE_REFERENCES in
webapp/storage/models.py for why the product's own writes keep them true). SQLite keeps both.

Revision ID: 0008_message_references
Revises: 0007_pending_message
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_message_references"
down_revision = "0007_pending_message"
branch_labels = None
depends_on = None

REFERENCED = {"event": "CASCADE", "endpoint": None}


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for key in sa.inspect(bind).get_foreign_keys("message"):
        if key["referred_table"] in REFERENCED:
            op.drop_constraint(key["name"], "message", type_="foreignkey")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, on_delete in REFERENCED.items():
        op.create_foreign_key(f"message_{table}_id_fkey", "message", table, [f"{table}_id"], ["id"], ondelete=on_delete)
