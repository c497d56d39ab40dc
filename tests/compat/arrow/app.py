"""pyarrow: a table written to Parquet (zstd) in /tmp, read back, filtered and aggregated with Arrow compute."""

import os
import tempfile

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def handler(event, context):
    table = pa.table({"city": ["Paris", "Lyon", "Paris", "Nice"], "sales": [3, 4, 5, 6]})
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "sales.parquet")
        pq.write_table(table, path, compression="zstd")
        metadata = pq.read_metadata(path)
        back = pq.read_table(path, filters=[("sales", ">", 3)])
        size = os.path.getsize(path)
    totals = back.group_by("city").aggregate([("sales", "sum")]).sort_by("city")
    return {
        "rows": [metadata.num_rows, back.num_rows],
        "codec": metadata.row_group(0).column(1).compression,
        "totals": dict(zip(totals["city"].to_pylist(), totals["sales_sum"].to_pylist())),
        "roundtrip": back.equals(table.filter(pc.greater(table["sales"], 3))),
        "parquet_bytes_over_100": size > 100,
        "version": pa.__version__,
    }
