"""The AWS worker killed mid-job: ``serve`` against moto's S3 + SQS, SIGKILLed while it trains.

The killed delivery publishes nothing; the message comes back after its visibility timeout and a
fresh worker (another machine: its own work folder) resumes from the checkpoint mirrored next to
the output and publishes the adapter once. A job whose snapshot does not exist ends in the
dead-letter queue after ``maxReceiveCount`` receives, with a ``failed`` result reported.
"""

import json
import signal
import subprocess
import sys
import time

from prefloop_worker.jobs.contracts import validate_training_progress, validate_training_result
from prefloop_worker.train.checkpoint import load_checkpoint
from aws_world import moto_endpoint, training_world  # noqa: F401  (moto_endpoint: a fixture)
from test_jobs import ENV, job_message

MAX_RECEIVES = 3
VISIBILITY = 4  # seconds: how long a killed worker's message stays hidden
STEPS = 16
OUT_PREFIX = "adapters/a-kill/"


def _serve(work, *extra):
    return [sys.executable, "-m", "prefloop_worker", "serve", "--work-dir", str(work), "--wait-seconds", "1",
            "--retry-delay", "0", "--visibility-timeout", str(VISIBILITY), *extra]


def _drain(sqs, url):
    """Every message now visible on a queue (received and deleted)."""
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return out
        for m in got:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _keys(s3, prefix):
    return sorted(o["Key"][len(prefix):] for o in s3.list_objects_v2(Bucket="data", Prefix=prefix).get("Contents", []))


def _counts(sqs, url):
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                   "ApproximateNumberOfMessagesNotVisible"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"]), int(attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


def test_serve_killed_mid_job_publishes_nothing_and_completes_on_redelivery(random_sd, snapshot_path, tmp_path,
                                                                            moto_endpoint):  # noqa: F811
    from diffusers import StableDiffusionPipeline

    s3, sqs, training, results, dlq = training_world(random_sd, snapshot_path, MAX_RECEIVES)
    env = {**ENV, **moto_endpoint, "SQS_TRAINING_QUEUE_URL": training, "SQS_RESULTS_QUEUE_URL": results}

    job = job_message("job-kill", "s3://data/models/tiny", "s3://data/datasets/snap-1", "s3://data/" + OUT_PREFIX.rstrip("/"),
                      steps=STEPS, extra={"checkpointEvery": 2, "progressEvery": 1, "evalEvery": 100,
                                          "heldoutFraction": 0.3, "heldoutMax": 8})
    sqs.send_message(QueueUrl=training, MessageBody=json.dumps(job))

    # 1. The first worker trains until a checkpoint is mirrored and progress was reported; then SIGKILL.
    first_log_path = tmp_path / "machine-1.log"
    with first_log_path.open("w") as sink:
        first = subprocess.Popen(_serve(tmp_path / "machine-1"), stdout=subprocess.DEVNULL, stderr=sink, env=env)
    bodies, deadline = [], time.time() + 120
    while first.poll() is None and time.time() < deadline:
        bodies += _drain(sqs, results)
        if ".checkpoint/checkpoint.safetensors" in _keys(s3, OUT_PREFIX) and any(
                b["type"] == "training_progress" and b["payload"]["step"] > 0 for b in bodies):
            break
        time.sleep(0.2)
    assert first.poll() is None, "the worker exited before it could be killed: " + first_log_path.read_text()[-3000:]
    first.send_signal(signal.SIGKILL)
    first.wait()
    first_log = first_log_path.read_text()
    bodies += _drain(sqs, results)
    killed_at = max(b["payload"]["step"] for b in bodies if b["type"] == "training_progress")
    assert 0 < killed_at < STEPS
    assert [b for b in bodies if b["type"] == "training_result"] == []
    assert _keys(s3, OUT_PREFIX) == [".checkpoint/checkpoint.safetensors", ".checkpoint/metrics.jsonl"]  # no adapter
    assert _counts(sqs, training) == (0, 1)  # in flight until its visibility timeout runs out
    checkpoints = [int(line.rsplit("checkpoint at step ", 1)[1].split()[0]) for line in first_log.splitlines()
                   if "checkpoint at step " in line]
    s3.download_file("data", OUT_PREFIX + ".checkpoint/checkpoint.safetensors", str(tmp_path / "mirrored.safetensors"))
    mirrored = load_checkpoint(tmp_path / "mirrored.safetensors")["step"]  # the kill may have cut the latest upload
    assert mirrored in checkpoints and mirrored <= killed_at

    # 2. A poison job: its snapshot does not exist.
    poison = job_message("job-poison", "s3://data/models/tiny", "s3://data/datasets/missing", "s3://data/adapters/a-poison")
    sqs.send_message(QueueUrl=training, MessageBody=json.dumps(poison))

    # 3. A fresh worker on another machine gets the killed job again once its visibility runs out.
    second = subprocess.run(_serve(tmp_path / "machine-2", "--idle-exit", "3"), capture_output=True, text=True,
                            env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stderr
    resumed = [int(line.rsplit("resumed from checkpoint at step ", 1)[1].split()[0]) for line in log.splitlines()
               if "resumed from checkpoint at step " in line]
    assert resumed == [mirrored]
    assert log.count("published s3://data/adapters/a-kill/manifest.json") == 1

    assert _keys(s3, OUT_PREFIX) == ["manifest.json", "metrics.jsonl", "pytorch_lora_weights.safetensors"]
    manifest = json.loads(s3.get_object(Bucket="data", Key=OUT_PREFIX + "manifest.json")["Body"].read())
    assert (manifest["jobId"], manifest["steps"]) == ("job-kill", STEPS)
    metrics = s3.get_object(Bucket="data", Key=OUT_PREFIX + "metrics.jsonl")["Body"].read().decode().splitlines()
    steps = [json.loads(line)["step"] for line in metrics]
    assert steps == list(range(STEPS + 1))  # the step-0 evaluation, then every step once, across both machines
    adapter = tmp_path / "published"
    adapter.mkdir()
    s3.download_file("data", OUT_PREFIX + "pytorch_lora_weights.safetensors", str(adapter / "pytorch_lora_weights.safetensors"))
    state_dict, _alphas = StableDiffusionPipeline.lora_state_dict(str(adapter))
    assert state_dict and all(key.startswith("unet.") for key in state_dict)

    bodies = _drain(sqs, results)
    for b in bodies:
        (validate_training_progress if b["type"] == "training_progress" else validate_training_result)(b)
    done = [b for b in bodies if b["type"] == "training_result" and b["payload"]["trainingJobId"] == "job-kill"]
    assert [(b["id"], b["payload"]["status"], b["payload"]["adapterUri"]) for b in done] == [
        ("job-kill.result", "succeeded", "s3://data/adapters/a-kill")]
    after = [b["payload"]["step"] for b in bodies if b["type"] == "training_progress" and b["payload"]["trainingJobId"] == "job-kill"]
    assert (min(after), max(after)) == (mirrored + 1, STEPS)  # progress from the resumed step on

    failed = [b for b in bodies if b["type"] == "training_result" and b["payload"]["trainingJobId"] == "job-poison"]
    assert [(b["payload"]["status"], b["payload"]["adapterUri"]) for b in failed] == [("failed", None)]
    assert failed[0]["payload"]["error"] == "nothing at s3://data/datasets/missing (neither an object nor a prefix)"
    receives = [line.split("failed (receive ", 1)[1].split(")")[0] for line in log.splitlines() if "failed (receive " in line]
    assert receives == [f"{k}/{MAX_RECEIVES}" for k in range(1, MAX_RECEIVES + 1)]  # the poison job, and nothing else
    assert _keys(s3, "adapters/a-poison/") == []

    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [json.loads(m["Body"])["id"] for m in dead] == ["job-poison"]
    assert _counts(sqs, training) == (0, 0)
