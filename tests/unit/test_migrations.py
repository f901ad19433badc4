"""Migrations build exactly the schema the models describe, on every backend."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import skyfleet.domains.addresses.models
import skyfleet.domains.events.models
import skyfleet.domains.indicators.models
import skyfleet.domains.inventory.models
import skyfleet.domains.operations.models
import skyfleet.domains.projects.models
import skyfleet.domains.quotas.models
import skyfleet.domains.schedules.models
import skyfleet.domains.servers.models
import skyfleet.domains.sites.models
import skyfleet.domains.sync.models  # noqa: F401  (register tables)
from skyfleet.db import migrate
from skyfleet.db.base import Base


def test_migrated_schema_matches_models(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    migrate.upgrade(db_url)
    from alembic import command

    command.downgrade(migrate.alembic_config(db_url), "base")
    engine = sa.create_engine(db_url)
    assert "sites" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    migrate.upgrade(db_url)
    engine = sa.create_engine(db_url)
    assert "sites" in sa.inspect(engine).get_table_names()
    engine.dispose()
