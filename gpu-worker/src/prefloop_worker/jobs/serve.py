"""The container's job loop: poll the SQS training queue, train, post results.

* Receives one message at a time; while the job trains a heartbeat thread keeps extending the
  message's visibility, so SQS does not hand it to another worker.
* Progress: every ``training_progress`` message goes to the results queue as it happens (a failed
  send is logged and training goes on).
* Success: post the ``training_result`` to the results queue, then delete the job message.
* Idempotent by job id: a re-delivered finished job publishes nothing (``run_job`` finds its
  manifest) and re-posts the same result message (same id; consumers are idempotent on it).
* Poison: an unreadable or invalid message, or a job that fails, is *not* deleted. It becomes
  visible again (after ``retry_delay`` seconds) and the queue's redrive policy moves it to the
  dead-letter queue after ``maxReceiveCount`` receives. On that last receive a ``failed`` result
  is posted (when the message has a job id), so the platform learns about it.
* Exits after ``idle_exit`` seconds without messages (``WORKER_IDLE_EXIT_SECONDS``) or after
  ``max_jobs`` jobs.
"""

from __future__ import annotations

import json
import os
import threading
import time

from ..logs import stderr_log
from .runner import failure_result, run_job


def _sqs():
    import boto3

    return boto3.client("sqs")


class VisibilityHeartbeat:
    def __init__(self, queue_url: str, receipt: str, timeout: int, log):
        self.queue_url, self.receipt, self.timeout, self.log = queue_url, receipt, timeout, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.extensions = 0

    def _run(self):
        client = _sqs()
        interval = max(1.0, self.timeout / 3)
        while not self._stop.wait(interval):
            try:
                client.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=self.receipt, VisibilityTimeout=self.timeout)
                self.extensions += 1
            except Exception as err:  # keep training; the worst case is a duplicate delivery
                self.log(f"[serve] could not extend visibility: {err}")

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)
        return False


def max_receive_count(client, queue_url: str) -> int | None:
    attrs = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    policy = attrs.get("RedrivePolicy")
    if not policy:
        return None
    return int(json.loads(policy).get("maxReceiveCount"))


def serve(
    training_queue_url: str,
    results_queue_url: str,
    *,
    work_dir=None,
    visibility_timeout: int = 600,
    wait_seconds: int = 20,
    retry_delay: int = 30,
    idle_exit: float | None = None,
    max_jobs: int | None = None,
    log=None,
    **train_overrides,
) -> int:
    log = log or stderr_log()
    client = _sqs()
    max_receives = max_receive_count(client, training_queue_url)
    log(f"[serve] polling {training_queue_url} (visibility {visibility_timeout}s, DLQ after {max_receives} receives)")
    handled, idle_since = 0, time.time()
    while max_jobs is None or handled < max_jobs:
        response = client.receive_message(
            QueueUrl=training_queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            AttributeNames=["ApproximateReceiveCount"],
        )
        messages = response.get("Messages", [])
        if not messages:
            if idle_exit is not None and time.time() - idle_since >= idle_exit:
                log(f"[serve] idle for {idle_exit:g}s; exiting")
                break
            continue
        message = messages[0]
        receipt = message["ReceiptHandle"]
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        last_chance = max_receives is not None and receives >= max_receives
        handled += 1
        job = None
        try:
            job = json.loads(message["Body"])
            def send_progress(progress: dict) -> None:
                try:
                    client.send_message(QueueUrl=results_queue_url, MessageBody=json.dumps(progress))
                except Exception as err:  # progress is advisory: never fail a job over it
                    log(f"[serve] could not send progress: {err}", "warn")

            with VisibilityHeartbeat(training_queue_url, receipt, visibility_timeout, log):
                result = run_job(job, work_dir=work_dir, log=log, on_progress=send_progress, **train_overrides)
            client.send_message(QueueUrl=results_queue_url, MessageBody=json.dumps(result))
            client.delete_message(QueueUrl=training_queue_url, ReceiptHandle=receipt)
            log(f"[serve] job {job['id']} done ({result['payload']['status']})")
        except Exception as err:
            log(f"[serve] message {message['MessageId']} failed (receive {receives}/{max_receives or '∞'}): {type(err).__name__}: {err}",
                "error")
            if last_chance:
                failed = failure_result(job, err)
                if failed is not None:
                    client.send_message(QueueUrl=results_queue_url, MessageBody=json.dumps(failed))
            try:  # leave it for a retry / the dead-letter queue
                client.change_message_visibility(QueueUrl=training_queue_url, ReceiptHandle=receipt, VisibilityTimeout=retry_delay)
            except Exception:
                pass
        idle_since = time.time()
    return 0


def env_int(name: str, default: int | None) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default
