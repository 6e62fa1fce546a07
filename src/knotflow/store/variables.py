"""Bots' and apps' variables: their declarations, and the values stored per app or per user."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import RowMapping, and_, func, or_, select

from knotflow.store import tables as t
from knotflow.store.base import Repository
from knotflow.store.records import VariableDeclaration, VariableValue

_DECLARATION_COLUMNS = {"owner_kind": "owner_kind", "owner_id": "owner_id", "name": "name", "type": "type",
                        "scope": "scope", "default": "default_value", "created_at": "created_at",
                        "updated_at": "updated_at"}


def _declaration(row: RowMapping) -> VariableDeclaration:
    return VariableDeclaration(**{field: row[column] for field, column in _DECLARATION_COLUMNS.items()})


def _value(row: RowMapping) -> VariableValue:
    return VariableValue(name=row["name"], connector_id=row["connector_id"], connector_uid=row["connector_uid"],
                         value=row["value"], created_at=row["created_at"], updated_at=row["updated_at"])


class VariableStore(Repository):
    async def declare_variable(self, declaration: VariableDeclaration) -> None:
        """Add a declaration, or replace the type, scope and default of the one with its name (keeping when it
        was first declared)."""
        v = t.variables
        statement = self._insert(v).values(
            **{column: getattr(declaration, field) for field, column in _DECLARATION_COLUMNS.items()})
        statement = statement.on_conflict_do_update(
            index_elements=[v.c.owner_kind, v.c.owner_id, v.c.name],
            set_={name: statement.excluded[name] for name in ("type", "scope", "default_value", "updated_at")})
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def variable_declarations(self, owner_kind: str, owner_id: str) -> list[VariableDeclaration]:
        """The owner's declarations in the order they were first declared."""
        v = t.variables
        query = (select(v).where(v.c.owner_kind == owner_kind, v.c.owner_id == owner_id)
                 .order_by(v.c.created_at, v.c.name))
        async with self._engine.connect() as conn:
            return [_declaration(row) for row in (await conn.execute(query)).mappings().all()]

    async def count_variable_values(self, owner_kind: str, owner_id: str, name: str) -> int:
        """How many stored values (the app's, or users') the variable has."""
        vv = t.variable_values
        query = select(func.count()).select_from(vv).where(vv.c.owner_kind == owner_kind, vv.c.owner_id == owner_id,
                                                         vv.c.name == name)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def variable_values(self, owner_kind: str, owner_id: str,
                              keys: Sequence[tuple[str, str]]) -> list[VariableValue]:
        """The owner's stored values under these (connector id, connector uid) keys; ("", "") is the app's."""
        vv = t.variable_values
        query = select(vv).where(vv.c.owner_kind == owner_kind, vv.c.owner_id == owner_id,
                                 or_(*[and_(vv.c.connector_id == connector_id, vv.c.connector_uid == uid)
                                       for connector_id, uid in keys]))
        async with self._engine.connect() as conn:
            return [_value(row) for row in (await conn.execute(query)).mappings().all()]

    async def set_variable_values(self, owner_kind: str, owner_id: str, connector_id: str, connector_uid: str,
                                  values: Mapping[str, str], at: float) -> None:
        """Store values by name under one key, in one transaction; a value set before keeps its creation time."""
        if not values:
            return
        vv = t.variable_values
        statement = self._insert(vv).values([
            {"owner_kind": owner_kind, "owner_id": owner_id, "connector_id": connector_id,
             "connector_uid": connector_uid, "name": name, "value": value, "created_at": at, "updated_at": at}
            for name, value in values.items()])
        statement = statement.on_conflict_do_update(
            index_elements=[vv.c.owner_kind, vv.c.owner_id, vv.c.connector_id, vv.c.connector_uid, vv.c.name],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at})
        async with self._writer.begin() as conn:
            await conn.execute(statement)
