"""The canonical schema: round trips, conformance rules and error context."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distillshield.errors import SchemaError
from distillshield.schema import ACCOUNTS, EXCHANGES, conform, iter_batches, read_table, write_table


def _exchange_rows(n: int = 3) -> pa.Table:
    return pa.table(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "ts": pa.array([1_770_000_000_000_000 + i for i in range(n)], pa.timestamp("us", tz="UTC")),
            "account_id": ["a"] * n,
            "model": ["m"] * n,
            "endpoint": ["chat.completions"] * n,
            "ip": ["203.0.113.7"] * n,
            "n_messages": pa.array([1] * n, pa.int32()),
            "input_tokens": pa.array([10] * n, pa.int32()),
            "output_tokens": pa.array([20] * n, pa.int32()),
            "stream": [False] * n,
            "status": pa.array([200] * n, pa.int16()),
            "tools": pa.array([["read_file"], None, []], pa.list_(pa.string()))[:n],
        }
    )


def test_round_trip_single_file(tmp_path: Path) -> None:
    t = conform(_exchange_rows(), EXCHANGES)
    write_table(t, tmp_path, EXCHANGES)
    back = read_table(tmp_path, EXCHANGES)
    assert back.schema.equals(EXCHANGES.schema)
    assert back.equals(t)


def test_round_trip_part_files_in_order(tmp_path: Path) -> None:
    t = conform(_exchange_rows(), EXCHANGES)
    write_table(t.slice(0, 2), tmp_path, EXCHANGES, part=0)
    write_table(t.slice(2), tmp_path, EXCHANGES, part=1)
    assert read_table(tmp_path, EXCHANGES).column("request_id").to_pylist() == ["r0", "r1", "r2"]


def test_missing_nullable_columns_read_as_null_and_extras_are_dropped(tmp_path: Path) -> None:
    raw = _exchange_rows().append_column("provider_field", pa.array(["x", "y", "z"]))
    (tmp_path / "exchanges").mkdir()
    pq.write_table(raw, tmp_path / "exchanges" / "p.parquet")
    back = read_table(tmp_path, EXCHANGES)
    assert "provider_field" not in back.column_names
    assert back.column("prompt").null_count == 3
    assert back.column("reasoning_tokens").type == pa.int32()


def test_types_are_cast_and_naive_timestamps_are_utc() -> None:
    raw = _exchange_rows().set_column(1, "ts", pa.array([0, 1, 2], pa.timestamp("ms")))
    raw = raw.set_column(
        raw.schema.get_field_index("input_tokens"), "input_tokens", pa.array([1, 2, 3], pa.int64())
    )
    t = conform(raw, EXCHANGES)
    assert t.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert t.column("ts")[1].value == 1000  # 1 ms = 1000 us since the epoch, read as UTC


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    raw = _exchange_rows().drop_columns(["account_id"])
    pq.write_table(raw, tmp_path / "exchanges.parquet")
    with pytest.raises(SchemaError, match=r"exchanges\.parquet.*'account_id'"):
        read_table(tmp_path, EXCHANGES)


def test_null_in_required_column_names_row() -> None:
    raw = _exchange_rows().set_column(2, "account_id", pa.array(["a", None, "c"]))
    with pytest.raises(SchemaError, match="first at row 1"):
        conform(raw, EXCHANGES, "src.parquet")


def test_uncastable_column_is_a_schema_error() -> None:
    raw = _exchange_rows().set_column(
        _exchange_rows().schema.get_field_index("input_tokens"), "input_tokens", pa.array(["a", "b", "c"])
    )
    with pytest.raises(SchemaError, match="input_tokens"):
        conform(raw, EXCHANGES, "x")


def test_absent_table_is_an_error_unless_optional(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no table found"):
        read_table(tmp_path, ACCOUNTS)
    assert read_table(tmp_path, ACCOUNTS, optional=True).num_rows == 0


def test_iter_batches_streams_and_selects_columns(tmp_path: Path) -> None:
    t = conform(_exchange_rows(), EXCHANGES)
    write_table(t, tmp_path, EXCHANGES)
    batches = list(iter_batches(tmp_path, EXCHANGES, columns=["account_id", "prompt"], batch_size=2))
    assert [b.num_rows for b in batches] == [2, 1]
    assert batches[0].column_names == ["account_id", "prompt"]
    with pytest.raises(SchemaError, match="unknown column"):
        list(iter_batches(tmp_path, EXCHANGES, columns=["nope"]))


def test_corrupt_parquet_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / "exchanges.parquet").write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="not a readable Parquet"):
        read_table(tmp_path, EXCHANGES)
