"""The lean read path's Core tables (capplan_adapters/store/tables.py) say what the ORM models
say: each column there is the model's column, of the same type (issue 26)."""

from __future__ import annotations

import pytest

from capplan_adapters.store import tables
from capplan_adapters.store.models import Base


@pytest.mark.parametrize("name", sorted(tables.metadata.tables))
def test_each_core_column_is_the_models_column(name: str) -> None:
    model = Base.metadata.tables[name]
    for column in tables.metadata.tables[name].columns:
        assert column.name in model.c, f"{name}.{column.name} is not a column of the model"
        theirs = model.c[column.name]
        assert type(column.type) is type(theirs.type), f"{name}.{column.name}"
        assert repr(column.type) == repr(theirs.type), f"{name}.{column.name}"
        assert column.primary_key == theirs.primary_key, f"{name}.{column.name}"


def test_the_plan_tables_read_every_column() -> None:
    for name in ("capacity_plan", "scaling_step", "simulation_result", "audit_event"):
        assert set(tables.metadata.tables[name].c.keys()) == set(
            Base.metadata.tables[name].c.keys()
        )
