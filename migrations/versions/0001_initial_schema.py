"""Initial schema: endpoints, events, messages, attempts, operators, API tokens.

Revision ID: 0001
Revises: 

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():

    op.create_table('api_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('endpoint',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('use_proxy', sa.Boolean(), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=10), nullable=False),
    sa.Column('actions', sa.Text(), nullable=False),
    sa.Column('queue_batches', sa.Boolean(), nullable=False),
    sa.Column('threads', sa.Integer(), nullable=False),
    sa.Column('auth_type', sa.String(length=10), nullable=False),
    sa.Column('auth_username', sa.String(length=255), nullable=True),
    sa.Column('auth_region', sa.String(length=64), nullable=True),
    sa.Column('auth_service', sa.String(length=64), nullable=True),
    sa.Column('auth_access_key_id', sa.String(length=255), nullable=True),
    sa.Column('auth_algo_prefix', sa.String(length=32), nullable=True),
    sa.Column('auth_vendor_key', sa.String(length=32), nullable=True),
    sa.Column('auth_filename_format', sa.String(length=512), nullable=True),
    sa.Column('auth_secret_encrypted', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=36), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('event',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_created_at'), ['created_at'], unique=False)

    op.create_table('user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=255), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('email')
    )
    op.create_table('message',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('customer', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('response_code', sa.Integer(), nullable=True),
    sa.Column('response_class', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=True),
    sa.Column('lease_owner', sa.String(length=36), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('resend_of_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('is_test', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoint.id'], ),
    sa.ForeignKeyConstraint(['event_id'], ['event.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resend_of_id'], ['message.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index('ix_message_action_id', ['action', 'id'], unique=False)
        batch_op.create_index('ix_message_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_message_customer_id', ['customer', 'id'], unique=False)
        batch_op.create_index('ix_message_due', ['endpoint_id', 'id'], unique=False, sqlite_where=sa.text('next_attempt_at IS NOT NULL'), postgresql_where=sa.text('next_attempt_at IS NOT NULL'))
        batch_op.create_index('ix_message_endpoint_id_id', ['endpoint_id', 'id'], unique=False)
        batch_op.create_index('ix_message_event_id', ['event_id'], unique=False)
        batch_op.create_index('ix_message_leased', ['lease_until'], unique=False, sqlite_where=sa.text('lease_owner IS NOT NULL'), postgresql_where=sa.text('lease_owner IS NOT NULL'))
        batch_op.create_index('ix_message_resend_of_id', ['resend_of_id'], unique=False)
        batch_op.create_index('ix_message_response_class_id', ['response_class', 'id'], unique=False)
        batch_op.create_index('ix_message_response_code_id', ['response_code', 'id'], unique=False)
        batch_op.create_index('ix_message_status_id', ['status', 'id'], unique=False)
        batch_op.create_index('uq_message_pending_resend', ['resend_of_id'], unique=True, sqlite_where=sa.text("resend_of_id IS NOT NULL AND status IN ('queued', 'resent')"), postgresql_where=sa.text("resend_of_id IS NOT NULL AND status IN ('queued', 'resent')"))

    op.create_table('attempt',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('request_method', sa.String(length=10), nullable=False),
    sa.Column('request_url', sa.Text(), nullable=False),
    sa.Column('request_headers', sa.Text(), nullable=False),
    sa.Column('request_body', sa.Text(), nullable=False),
    sa.Column('response_code', sa.Integer(), nullable=True),
    sa.Column('response_headers', sa.Text(), nullable=False),
    sa.Column('response_body', sa.Text(), nullable=False),
    sa.Column('response_truncated', sa.Boolean(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attempt_message_id'), ['message_id'], unique=False)




def downgrade():

    with op.batch_alter_table('attempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attempt_message_id'))

    op.drop_table('attempt')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('uq_message_pending_resend', sqlite_where=sa.text("resend_of_id IS NOT NULL AND status IN ('queued', 'resent')"), postgresql_where=sa.text("resend_of_id IS NOT NULL AND status IN ('queued', 'resent')"))
        batch_op.drop_index('ix_message_status_id')
        batch_op.drop_index('ix_message_response_code_id')
        batch_op.drop_index('ix_message_response_class_id')
        batch_op.drop_index('ix_message_resend_of_id')
        batch_op.drop_index('ix_message_leased', sqlite_where=sa.text('lease_owner IS NOT NULL'), postgresql_where=sa.text('lease_owner IS NOT NULL'))
        batch_op.drop_index('ix_message_event_id')
        batch_op.drop_index('ix_message_endpoint_id_id')
        batch_op.drop_index('ix_message_due', sqlite_where=sa.text('next_attempt_at IS NOT NULL'), postgresql_where=sa.text('next_attempt_at IS NOT NULL'))
        batch_op.drop_index('ix_message_customer_id')
        batch_op.drop_index('ix_message_created_at')
        batch_op.drop_index('ix_message_action_id')

    op.drop_table('message')
    op.drop_table('user')
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_created_at'))

    op.drop_table('event')
    op.drop_table('endpoint')
    op.drop_table('api_token')

