"""``python -m prefloop_worker serve``: the container's loop over the SQS training queue.

Environment: ``SQS_TRAINING_QUEUE_URL``, ``SQS_RESULTS_QUEUE_URL`` (required),
``WORKER_IDLE_EXIT_SECONDS`` (exit when idle; default: never), ``SQS_VISIBILITY_TIMEOUT``
(default 600), ``SQS_RETRY_DELAY_SECONDS`` (default 30), ``PREFLOOP_WORK_DIR``; AWS settings
the usual boto3 way (``AWS_REGION``, ``AWS_ENDPOINT_URL`` for an emulator, role credentials).
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .serve import env_int

    parser.add_argument("--training-queue-url", default=os.environ.get("SQS_TRAINING_QUEUE_URL"))
    parser.add_argument("--results-queue-url", default=os.environ.get("SQS_RESULTS_QUEUE_URL"))
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--visibility-timeout", type=int, default=env_int("SQS_VISIBILITY_TIMEOUT", 600))
    parser.add_argument("--retry-delay", type=int, default=env_int("SQS_RETRY_DELAY_SECONDS", 30))
    parser.add_argument("--wait-seconds", type=int, default=20)
    parser.add_argument("--idle-exit", type=float, default=env_int("WORKER_IDLE_EXIT_SECONDS", None))
    parser.add_argument("--max-jobs", type=int, default=None)


def run(args) -> int:
    from ..logs import route_library_logs, stderr_log

    route_library_logs()
    from .serve import serve

    if not args.training_queue_url or not args.results_queue_url:
        stderr_log()("serve needs SQS_TRAINING_QUEUE_URL and SQS_RESULTS_QUEUE_URL", "error")
        return 2
    return serve(
        args.training_queue_url,
        args.results_queue_url,
        work_dir=args.work_dir,
        visibility_timeout=args.visibility_timeout,
        wait_seconds=args.wait_seconds,
        retry_delay=args.retry_delay,
        idle_exit=args.idle_exit,
        max_jobs=args.max_jobs,
        progress=False,
    )
