"""One UPDATE statement run for many rows (``executemany``), for the hot paths that write a row each.

The ORM builds a query per ``update()`` call, and ``bulk_update`` one CASE per field with a WHEN per
row: building either costs far more CPU than running the SQL (16 images settled: 2.5 ms of ORM
against ~0.2 ms of SQL; a 250-product result CSV: ~20 ms of CASE building). Here the statement is
built once from the model's metadata and every value goes through its field's own conversion, as
the ORM's would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def update_rows_by_key(
    model: type[models.Model], assign: Sequence[str], key: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """``UPDATE model SET assign… WHERE key…`` once per row; returns the rows changed by all of them.

    Each row holds the values of the ``assign`` fields, then those of the ``key`` fields (compared
    with ``=``). Both supported backends report the sum of all executions (sqlite3 and psycopg 3).
    """
    if not rows:
        return 0
    by_name = {field.name: field for field in model._meta.concrete_fields}
    fields = [by_name[name] for name in (*assign, *key)]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(by_name[name].column)} = %s" for name in assign)
    conditions = " AND ".join(f"{quote(by_name[name].column)} = %s" for name in key)
    # Names from the model's own metadata, quoted; every value is a parameter.
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {conditions}"  # noqa: S608
    assigned = len(assign)
    params = [
        [
            field.get_db_prep_save(value, connection)
            if n < assigned
            else field.get_db_prep_value(value, connection)
            for n, (field, value) in enumerate(zip(fields, row, strict=True))
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)
