"""The revisions, oldest first: ``0001`` the schema as it shipped before Alembic (schema
version 3), ``0002`` the replicas' tables."""
