from __future__ import annotations

from typing import Annotated

import typer

from .common import ModelArgument, Verbosity, echo_err, shared_options


@shared_options("verbosity")
def export_command(
    model: ModelArgument,
    output: Annotated[str, typer.Option("--output", "-o", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version (11..21).")] = 17,
    check: Annotated[bool, typer.Option("--check/--no-check", help="Run the graph with onnxruntime on a padded "
                                        "batch and refuse it if any log-probability differs from PyTorch's by "
                                        "more than 1e-4.")] = True,
    *,
    verbosity: Verbosity,
) -> None:
    """Write a model as ONNX (dynamic batch and time axes; codec and feature settings in its
    metadata) for `ctctool decode --runtime onnx` or any onnxruntime program."""
    from ..checkpoint import load_model
    from ..export import export_onnx

    if not output.lower().endswith(".onnx"):
        echo_err(f"warning: {output}: does not end in .onnx; --runtime auto will not recognize it")
    report = export_onnx(load_model(model), output, opset=opset, check=check)
    checked = (f", largest log-probability difference from PyTorch {report['max_abs_diff']:.1e}"
               if report["max_abs_diff"] is not None else ", not checked")
    echo_err(f"wrote {output} ({report['bytes'] / 1e6:.1f} MB, opset {opset}{checked})")
