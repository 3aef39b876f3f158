"""The store's Alembic migrations, for SQLite and PostgreSQL alike.

Run by ``risingtide.store.migrate`` each time a store opens (no ``alembic.ini``): ``env.py``
takes the open connection from ``config.attributes["connection"]`` and migrates inside the
store's own transaction. Each revision in ``versions/`` is written out in full, never
generated from ``risingtide.store.schema``, so it keeps doing what it did when the tables
change again later.
"""
