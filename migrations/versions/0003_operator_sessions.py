"""Server-side operator sessions: logging out, a password change or removing an operator ends them.

Revision ID: 0003
Revises: 0002

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('operator_session',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name='fk_operator_session_user_id', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    with op.batch_alter_table('operator_session', schema=None) as batch_op:
        batch_op.create_index('ix_operator_session_user_id', ['user_id'], unique=False)
        batch_op.create_index('ix_operator_session_created_at', ['created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('operator_session', schema=None) as batch_op:
        batch_op.drop_index('ix_operator_session_created_at')
        batch_op.drop_index('ix_operator_session_user_id')
    op.drop_table('operator_session')
