"""Command line of the worker: ``python -m prefloop_worker <command> ...``.

A small dispatcher: every subcommand lives in its own module and registers itself through a
``(name, add_arguments, run)`` entry in COMMANDS. Imports are lazy so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module has `add_arguments(parser)` and `run(args) -> int | None`.
COMMANDS: dict[str, tuple[str, str]] = {
    "make-tiny-model": ("prefloop_worker.tiny.cli", "train a tiny shapes model (SD- or SDXL-shaped) from scratch"),
    "evaluate-tiny": ("prefloop_worker.tiny.evaluate", "judge the model on held-out prompts; contact sheet"),
    "checksums": ("prefloop_worker.tiny.checksums", "write or verify a folder's checksums.sha256"),
    "export-onnx": ("prefloop_worker.export.cli", "export an SD or SDXL pipeline folder to ONNX with LoRA inputs"),
    "make-golden": ("prefloop_worker.golden.make_golden", "write golden fixtures for the Node pipeline"),
    "make-golden-sdxl": ("prefloop_worker.golden.make_golden_sdxl", "write golden fixtures for the Node SDXL pipeline"),
    "train": ("prefloop_worker.jobs.train_command", "run one preference-training job (job JSON in, adapter out)"),
    "serve": ("prefloop_worker.jobs.serve_command", "poll the SQS training queue and run its jobs"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m prefloop_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        command.set_defaults(_module=module_name)
        # Arguments are added lazily only for the chosen command (see main).
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from .logs import log_format

    try:
        log_format()
    except ValueError as err:
        print(f"prefloop_worker: {err}", file=sys.stderr)
        return 2
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]][0])
        parser = argparse.ArgumentParser(prog=f"python -m prefloop_worker {argv[0]}", description=COMMANDS[argv[0]][1])
        module.add_arguments(parser)
        return int(module.run(parser.parse_args(argv[1:])) or 0)
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
