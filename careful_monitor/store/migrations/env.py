"""Alembic environment of the store: applies `versions/` to the connection `Store.upgrade()` hands in.

`Store` runs migrations programmatically, with no alembic.ini: it points `script_location` at this
folder and passes an open connection, already inside its transaction and migration lock, as
`config.attributes["connection"]`. Without one (the alembic CLI with a developer's own ini, e.g. for
`alembic revision --autogenerate`), `sqlalchemy.url` is used.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from careful_monitor.store.models import Base


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite can't ALTER most things; batch mode rebuilds tables in later migrations
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    """Migrate the handed-in connection, or the database at `sqlalchemy.url` (or emit SQL offline)."""
    config = context.config
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection handed in and no sqlalchemy.url set")
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            _configure(conn)
            conn.commit()
    finally:
        engine.dispose()


try:
    _ = context.config
except (NameError, AttributeError):
    # imported outside an alembic run (pytest --doctest-modules collects every module): nothing to do
    pass
else:
    run()
