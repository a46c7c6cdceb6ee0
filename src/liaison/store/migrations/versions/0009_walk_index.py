"""Indexes that let a page check an object's release class and whether it is the newest
version without reading the object itself (store/pages.py): one in the order objects were
added, walked for partners that may see many classes, and the per-class one, now holding
``latest`` too.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_objects_added_class", "objects", ["date_added", "release_class", "latest"])
    op.drop_index("ix_objects_class_added", "objects")
    op.create_index("ix_objects_class_added", "objects", ["release_class", "date_added", "latest"])


def downgrade() -> None:
    op.drop_index("ix_objects_class_added", "objects")
    op.create_index("ix_objects_class_added", "objects", ["release_class", "date_added"])
    op.drop_index("ix_objects_added_class", "objects")
