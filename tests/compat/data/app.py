"""numpy and pandas: linear algebra through the vendored OpenBLAS, a group-by, CSV in and JSON out."""

import io

import numpy as np
import pandas as pd


def handler(event, context):
    solution = np.linalg.solve(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([9.0, 8.0]))
    frame = pd.read_csv(io.StringIO("city,sales\nParis,3\nLyon,4\nParis,5\n"))
    totals = frame.groupby("city")["sales"].sum()
    return {
        "numpy": [round(float(x), 9) for x in solution],
        "numpy_blas": np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"],
        "pandas": totals.to_dict(),
        "pandas_json": frame.sort_values("sales").to_json(orient="values"),
        "versions": {"numpy": np.__version__, "pandas": pd.__version__},
    }
