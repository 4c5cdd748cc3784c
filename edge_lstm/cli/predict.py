"""`edge-lstm predict` (library: edge_lstm.runtime.predict)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_lstm.cli.common import (
    AllowFallback,
    JsonFlag,
    ProviderOptions,
    Verbose,
    emit_json,
    fail,
    handle_errors,
)


@handle_errors
def predict(
    model: Annotated[Path, typer.Argument(help="An exported .onnx/.ort classifier.")],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="PNG/JPEG pictures, .npy arrays or IDX files (a model of own sequences: .npy, .npz, .csv "
            "with a line per step, .ts); with --ray also folders, globs, @list files."
        ),
    ],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many classes to show per input.")] = 1,
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize/--no-normalize",
            help="Bring pictures into MNIST's convention (invert, fit 20x20, centre of mass).",
        ),
    ] = True,
    provider: Annotated[str, typer.Option(help="onnxruntime provider.")] = "cpu",
    provider_option: ProviderOptions = None,
    allow_fallback: AllowFallback = False,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Classify in bulk with Ray Data: a cluster's address, or 'local' to start one (needs --out)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="--ray: the results file, .csv or .parquet.")] = None,
    actors: Annotated[int, typer.Option(help="--ray: runners in the actor pool.")] = 2,
    batch_size: Annotated[int, typer.Option(help="--ray: files per batch.")] = 64,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Classify images; a file that fails is reported and the others go on (exit 1 if any failed)."""
    if ray is not None:
        return _bulk(model, inputs, ray, out, actors, batch_size, normalize, provider, as_json)
    from edge_lstm.runtime import Classifier, SessionConfig
    from edge_lstm.runtime.predict import predict_files
    from edge_lstm.runtime.providers import parse_options

    if not 1 <= top_k <= 10:
        raise fail(f"--top-k must be between 1 and 10, got {top_k}")
    config = SessionConfig(
        provider=provider,
        provider_options=parse_options(provider_option or []),
        allow_fallback=allow_fallback,
        verbose=verbose,
    )
    clf = Classifier(model, config)
    results = predict_files(clf, [Path(i) for i in inputs], top_k=top_k, normalize=normalize)
    for r in results:
        if r.error is not None:
            typer.echo(f"error: {r.error}", err=True)
        else:
            names = clf.arch.classes
            alts = "  ".join(f"{names[k]}:{100 * p:.1f}%" for k, p in r.top[1:])
            sure = f", margin {100 * (r.margin or 0):.1f} points over {names[r.runner_up or 0]}"
            typer.echo(
                f"{r.source}: {r.name} ({100 * (r.probability or 0):.1f}%{sure})" + (f"  [{alts}]" if alts else "")
            )
    if as_json:
        emit_json({"model": str(model), "provider": clf.provider, "predictions": [r.to_dict() for r in results]})
    if any(r.error is not None for r in results):
        raise typer.Exit(code=1)


def _bulk(
    model: Path,
    inputs: list[str],
    address: str,
    out: Path | None,
    actors: int,
    batch_size: int,
    normalize: bool,
    provider: str,
    as_json: bool,
) -> None:
    if out is None:
        raise fail("--ray writes its results to a file: give --out results.csv (or .parquet)")
    from edge_lstm.runtime.model_info import file_arch

    arch = file_arch(model)
    if arch is not None and not arch.image:
        raise fail(
            f"{model} classifies sequences: --ray classifies pictures and arrays of images; predict "
            "sequence files without --ray"
        )
    from edge_lstm.cluster.ray_data import BulkConfig, run
    from edge_lstm.fileio import check_writable_dir

    check_writable_dir(out.parent, "--out")
    summary = run(
        BulkConfig(
            model=model,
            inputs=tuple(inputs),
            out=out,
            normalize=normalize,
            actors=actors,
            batch_size=batch_size,
            address=address,
            provider=provider,
        )
    )
    typer.echo(
        f"{summary['rows']} results from {summary['files']} files in {summary['out']} ({summary['failed']} failed)"
    )
    if as_json:
        emit_json(summary)
    if summary["failed"]:
        raise typer.Exit(code=1)
