"""Delivery's queue apart from the log: pending_message holds what is still to be sent and its leases.

Claims used to lease ``message`` rows: each claim and each outcome rewrote a row
that a dozen log indexes point at, and the claim's plan depended on statistics
(see ``PendingMessage``). Messages still to be sent are copied over with their
leases; the lease columns and their index leave ``message`` (the queue view keeps
ix_message_due), and its index on resend_of_id keeps only the resends (one entry
fewer to write per message).

Revision ID: 0007_pending_message
Revises: 0006_customer_prefix
"""
from alembic import op
import sqlalchemy as sa

revision = "0007_pending_message"
down_revision = "0006_customer_prefix"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def only_where(condition: str) -> dict:
    """A partial index's condition, for both databases."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade():
    op.create_table(
        "pending_message",
        sa.Column("message_id", BIG_ID, autoincrement=False, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("is_retry", sa.Boolean(), nullable=False),
        sa.Column("lease_owner", sa.String(length=36), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_pending_message_endpoint", "pending_message", ["endpoint_id", "message_id"])
    op.create_index("ix_pending_message_leased", "pending_message", ["lease_until"],
                    **only_where("lease_owner IS NOT NULL"))
    op.execute("INSERT INTO pending_message (message_id, endpoint_id, next_attempt_at, is_retry, lease_owner, "
               "lease_until) SELECT id, endpoint_id, next_attempt_at, status = 'resent', lease_owner, lease_until "
               "FROM message WHERE next_attempt_at IS NOT NULL")
    # Plain ALTERs (SQLite 3.35+ drops a column in place), no batch copy-and-rename: on SQLite,
    # dropping the old message table would cascade to its attempts and pending rows (foreign keys on).
    op.drop_index("ix_message_leased", table_name="message")
    op.drop_index("ix_message_resend_of_id", table_name="message")
    op.create_index("ix_message_resend_of_id", "message", ["resend_of_id"], **only_where("resend_of_id IS NOT NULL"))
    op.drop_column("message", "lease_owner")
    op.drop_column("message", "lease_until")


def downgrade():
    op.add_column("message", sa.Column("lease_owner", sa.String(length=36), nullable=True))
    op.add_column("message", sa.Column("lease_until", sa.DateTime(), nullable=True))
    op.drop_index("ix_message_resend_of_id", table_name="message")
    op.create_index("ix_message_resend_of_id", "message", ["resend_of_id"])
    op.create_index("ix_message_leased", "message", ["lease_until"], **only_where("lease_owner IS NOT NULL"))
    op.execute("UPDATE message SET "
               "lease_owner = (SELECT lease_owner FROM pending_message WHERE message_id = message.id), "
               "lease_until = (SELECT lease_until FROM pending_message WHERE message_id = message.id)")
    op.drop_index("ix_pending_message_leased", table_name="pending_message")
    op.drop_index("ix_pending_message_endpoint", table_name="pending_message")
    op.drop_table("pending_message")
