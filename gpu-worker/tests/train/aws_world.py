"""moto's server mode (S3 + SQS on one real endpoint) and the bucket and queues the AWS worker reads."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_endpoint(monkeypatch):
    port = _free_port()
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield env
    proc.terminate()
    proc.wait(timeout=10)


def upload_tree(s3, bucket, local: Path, prefix: str):
    for path in local.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")


def training_world(model: Path, snapshot: Path, max_receives: int):
    """Bucket ``data`` with the model (``models/tiny``) and the snapshot (``datasets/snap-1``); a training
    queue redriving to a dead-letter queue after ``max_receives`` receives; a results queue.
    Returns ``(s3, sqs, training_url, results_url, dlq_url)``."""
    import boto3

    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    s3.create_bucket(Bucket="data")
    upload_tree(s3, "data", model, "models/tiny")
    s3.upload_file(str(snapshot), "data", "datasets/snap-1/part-0.parquet")
    dlq = sqs.create_queue(QueueName="training-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    training = sqs.create_queue(QueueName="training", Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    results = sqs.create_queue(QueueName="results")["QueueUrl"]
    return s3, sqs, training, results, dlq
