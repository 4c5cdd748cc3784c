"""`edge-lstm predict --ray INPUT...`: many pictures and arrays classified with Ray Data, on this
machine or a cluster, the results streamed to one CSV or Parquet file with the source of each.

The inputs (folders, globs, files, and list files of paths, `@list.txt`) become a dataset of paths;
`map_batches` runs on a pool of actors, each holding ONE runner (the model file opened once per
actor, not per batch) and reading its files with the same loaders and normalisation as `predict`. A
file that cannot be read is a row with its error, and the run goes on. Rows reach the output file as
Ray Data produces them (iter_batches), so memory stays bounded whatever the number of files.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import ConfigError, InputError
from edge_lstm.fileio import atomic_path
from edge_lstm.runtime.preprocess import INPUT_SUFFIXES

COLUMNS = ["source", "label", "probability", *[f"p{k}" for k in range(10)], "error"]


@dataclass(frozen=True)
class BulkConfig:
    model: Path
    inputs: tuple[str, ...]
    out: Path  # .csv or .parquet
    normalize: bool = True
    actors: int = 2  # runners in the pool
    batch_size: int = 64  # files per map_batches call
    address: str | None = None  # a Ray cluster's address; None: a local one
    provider: str = "cpu"

    def validate(self) -> None:
        if self.out.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError(f"--out {self.out}: write a .csv or a .parquet file")
        if self.actors < 1 or self.batch_size < 1:
            raise ConfigError("--actors and --batch-size must be >= 1")


def expand(inputs: tuple[str, ...]) -> list[str]:
    """Folders (their files, recursively), globs, files, and @list files (one path a line), in order."""
    out: list[str] = []
    for item in inputs:
        if item.startswith("@"):
            listed = Path(item[1:])
            if not listed.is_file():
                raise InputError(f"{listed}: list file not found")
            out += expand(tuple(ln.strip() for ln in listed.read_text().splitlines() if ln.strip()))
        elif any(ch in item for ch in "*?["):
            out += sorted(glob.glob(item, recursive=True))
        elif Path(item).is_dir():
            out += sorted(str(p) for p in Path(item).rglob("*") if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES)
        else:
            out.append(item)  # a missing file is reported as its own row, as `predict` does
    return out


class Predictor:
    """One runner per Ray actor; a batch of paths -> a batch of result rows."""

    def __init__(self, model: str, normalize: bool, provider: str) -> None:
        from edge_lstm.runtime import Classifier, SessionConfig

        self.clf = Classifier(model, SessionConfig(provider=provider))
        self.normalize = normalize

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from edge_lstm.runtime.predict import predict_files

        rows: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        for p in predict_files(self.clf, [Path(s) for s in batch["path"]], top_k=10, normalize=self.normalize):
            probs = dict(p.top)
            rows["source"].append(p.source)
            rows["label"].append(p.label if p.label is not None else -1)
            rows["probability"].append(p.probability if p.probability is not None else float("nan"))
            for k in range(10):
                rows[f"p{k}"].append(probs.get(k, float("nan")))
            rows["error"].append(p.error or "")
        return rows


def batches(config: BulkConfig, paths: list[str]) -> Iterator[dict[str, Any]]:
    import ray

    ds = ray.data.from_items(
        [{"path": p} for p in paths], override_num_blocks=max(1, min(len(paths) // config.batch_size, 200))
    )
    results = ds.map_batches(
        Predictor,
        fn_constructor_args=(str(config.model), config.normalize, config.provider),
        batch_size=config.batch_size,
        concurrency=config.actors,
        num_cpus=1,
        batch_format="numpy",
    )
    yield from results.iter_batches(batch_size=1024, batch_format="numpy")


def run(config: BulkConfig) -> dict[str, Any]:
    """Classify every input; returns counts. The output file appears whole, or not at all."""
    config.validate()
    from edge_lstm.runtime import Classifier

    Classifier(config.model)  # a wrong model file: one error here, not one per actor
    paths = expand(config.inputs)
    if not paths:
        raise InputError("no input files found (folders, globs, files or @list files)")
    from edge_lstm.cluster.ray_serve import connect

    connect(config.address)
    n = failed = 0
    with atomic_path(config.out) as tmp:
        if config.out.suffix.lower() == ".csv":
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(COLUMNS)
                for b in batches(config, paths):
                    for i in range(len(b["source"])):
                        w.writerow([_cell(b[c][i]) for c in COLUMNS])
                    n, failed = n + len(b["source"]), failed + int(np.sum(b["error"] != ""))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            for b in batches(config, paths):
                table = pa.table({c: b[c] for c in COLUMNS})
                writer = writer or pq.ParquetWriter(str(tmp), table.schema)
                writer.write_table(table)
                n, failed = n + len(b["source"]), failed + int(np.sum(b["error"] != ""))
            if writer is not None:
                writer.close()
    return {"files": len(paths), "rows": n, "failed": failed, "out": str(config.out)}


def _cell(v: Any) -> Any:
    return round(float(v), 6) if isinstance(v, float | np.floating) else v
