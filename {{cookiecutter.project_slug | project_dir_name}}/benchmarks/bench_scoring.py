"""`make bench-score`: batch scoring's throughput, pandas against Spark, on the same rows.

A development tool, kept out of the package. It scores with this project's champion (run
``make all`` first) ``--rows`` rows drawn at random from the project's own feature table, the
same rows for both engines, ``--runs`` times each, with the score step's engine functions:
``score_chunks`` (pandas, in this process) and ``score_on_spark`` (``mlflow.pyfunc.spark_udf`` on
``--master``, one session for all its runs). Reading the warehouse and writing the outputs are
the same for both engines and left out.

Prints, as Markdown: the median seconds and rows per second of each engine, Spark's start-up
and its first run (its Python workers start and load the model), and the ratio; ``--output FILE``
also writes it there. It stops if the two engines disagree on a label.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from {{ cookiecutter.package_name }}.batch import DEFAULT_CHUNK_ROWS, score_chunks
from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.data.warehouse import load_feature_table
from {{ cookiecutter.package_name }}.errors import StepError
from {{ cookiecutter.package_name }}.registry import CHAMPION, fetch_registered
from {{ cookiecutter.package_name }}.spark_scoring import require_pyspark, score_on_spark, spark_session

if TYPE_CHECKING:
    import pandas as pd

    from {{ cookiecutter.package_name }}.registry import RegisteredModel


def drawn_rows(model: RegisteredModel, n_rows: int, seed: int = 0) -> pd.DataFrame:
    """`n_rows` rows of the project's feature table, drawn with replacement, ids made unique."""
    settings = get_settings()
    table = load_feature_table(settings, model.contract)
    picked = np.random.default_rng(seed).integers(0, len(table), n_rows)
    rows = table.iloc[picked].reset_index(drop=True)
    rows[model.contract.id_column] = np.arange(1, n_rows + 1)
    return rows


def main() -> None:
    """Score with both engines and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="Rows scored per run.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per engine (median over them).")
    parser.add_argument("--master", default="local[2]", help="Spark's master (SPARK_MASTER).")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="Rows per call.")
    parser.add_argument("--output", type=Path, help="Also write the table to this file.")
    args = parser.parse_args()
    if min(args.rows, args.runs, args.chunk_rows) < 1:
        parser.error("--rows, --runs and --chunk-rows must be at least 1")
    try:
        require_pyspark()
        model = fetch_registered(get_settings(), CHAMPION)
    except StepError as error:
        sys.exit(f"error: {error}")
    rows = drawn_rows(model, args.rows)

    pandas_seconds = []
    for _ in range(args.runs):
        started = time.perf_counter()
        labels, scores, _ = score_chunks(model, rows, args.chunk_rows)
        pandas_seconds.append(time.perf_counter() - started)

    spark_seconds = []
    with contextlib.ExitStack() as stack:
        started = time.perf_counter()
        stack.enter_context(spark_session(args.master))
        start_up = time.perf_counter() - started
        for _ in range(args.runs + 1):  # the first run starts the workers: reported on its own
            started = time.perf_counter()
            spark_labels, spark_scores, _ = score_on_spark(
                model, rows, args.master, args.chunk_rows
            )
            spark_seconds.append(time.perf_counter() - started)
    if spark_labels != labels:
        sys.exit("error: Spark's labels differ from pandas' on the same rows")
    first, warm = spark_seconds[0], statistics.median(spark_seconds[1:])
    on_pandas = statistics.median(pandas_seconds)

    def rate(seconds: float) -> str:
        return f"{args.rows / seconds:,.0f}"

    lines = [
        f"{args.rows:,} rows of the feature table scored by {model.name} v{model.version}, "
        f"{args.chunk_rows:,} rows per call, median of {args.runs} runs "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}):",
        "",
        "| engine | seconds | rows/s | vs pandas |",
        "|---|---:|---:|---:|",
        f"| pandas, in-process chunks | {on_pandas:.2f} | {rate(on_pandas)} | 1.00x |",
        f"| Spark `{args.master}`, `spark_udf` | {warm:.2f} | {rate(warm)} | "
        f"{on_pandas / warm:.2f}x |",
        f"| Spark `{args.master}`, first run (workers start) | {first:.2f} | {rate(first)} | "
        f"{on_pandas / first:.2f}x |",
        "",
        f"Spark session start-up: {start_up:.1f} s. Labels identical on all {args.rows:,} rows; "
        f"largest score difference {float(np.abs(spark_scores - scores).max()):.1e}.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.output:
        args.output.write_text(table + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
