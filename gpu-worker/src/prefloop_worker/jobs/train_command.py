"""``python -m prefloop_worker train --job job.json``: run one training job (the local platform's
subprocess). stdout carries JSON lines only: a ``training_progress`` message every few steps (as it
happens), then the ``training_result`` message as the last line; exit 0 on success, 1 when
training failed (a ``failed`` result is printed), 2 when the job message is invalid."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", required=True, help="training job message (JSON file, or - for stdin)")
    parser.add_argument("--work-dir", default=None, help="checkpoints, downloads, caches (default $PREFLOOP_WORK_DIR or ~/.cache/prefloop-worker)")
    parser.add_argument("--result-out", default=None, help="also write the result message to this file")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (default: on a terminal)")


def run(args) -> int:
    from ..logs import route_library_logs, stderr_log

    route_library_logs()
    from .contracts import ContractError, validate_training_job
    from .runner import failure_result, run_job

    text = sys.stdin.read() if args.job == "-" else Path(args.job).read_text()
    try:
        job = validate_training_job(json.loads(text))
    except (json.JSONDecodeError, ContractError) as err:
        stderr_log()(f"invalid training job: {err}", "error")
        return 2
    def print_progress(message: dict) -> None:
        print(json.dumps(message), flush=True)

    try:
        result = run_job(job, work_dir=args.work_dir, progress=args.progress, on_progress=print_progress)
        code = 0
    except Exception as err:  # report, then fail
        import traceback

        stderr_log(job_id=job["id"])(f"training failed: {type(err).__name__}: {err}", "error", traceback=traceback.format_exc())
        result = failure_result(job, err)
        code = 1
    line = json.dumps(result)
    if args.result_out:
        Path(args.result_out).write_text(line + "\n")
    print(line, flush=True)
    return code
