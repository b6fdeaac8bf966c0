"""Standard Webhooks secret rotation (the previous secret and the end of its window) and custom headers.

Revision ID: 0004_signing_rotation
Revises: 0003

"""
from alembic import op
import sqlalchemy as sa


revision = '0004_signing_rotation'
down_revision = '0003'
branch_labels = None
depends_on = None

COLUMNS = (
    sa.Column("auth_previous_secret_encrypted", sa.Text(), nullable=True),
    sa.Column("auth_previous_secret_until", sa.DateTime(), nullable=True),
    sa.Column("custom_headers_json", sa.Text(), nullable=False, server_default="[]"),
)


def upgrade():
    with op.batch_alter_table("endpoint") as batch:
        for column in COLUMNS:
            batch.add_column(column)


def downgrade():
    with op.batch_alter_table("endpoint") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column.name)
