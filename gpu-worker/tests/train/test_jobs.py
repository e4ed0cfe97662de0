"""Job plumbing: contracts, the `train` subcommand (file://), a killed job resumed, and `serve`
against moto's server mode (S3 + SQS on one real endpoint)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aws_world import moto_endpoint, training_world  # noqa: F401  (moto_endpoint: a fixture)
from prefloop_worker.jobs import blobstore
from prefloop_worker.jobs.contracts import (
    ContractError,
    validate_training_job,
    validate_training_progress,
    validate_training_result,
)

REPO = Path(__file__).resolve().parents[3]
PACKAGED = REPO / "gpu-worker" / "src" / "prefloop_worker" / "jobs" / "contracts"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def job_message(job_id, base_uri, dataset_uri, output_uri, **payload):
    p = dict(
        adapterId=f"adapter-{job_id}", baseModelId="tiny-test", baseModelUri=base_uri, parentAdapterId=None,
        datasetSnapshotId="snap-1", datasetUri=dataset_uri, outputUri=output_uri, objective="dpo", space="latent",
        beta=1000, rank=4, alpha=4, steps=3, learningRate=1e-3, batchSize=2, gradientAccumulation=1, seed=1,
        extra={"heldoutFraction": 0.3, "heldoutMax": 8},
    )
    p.update(payload)
    return {"version": 1, "id": job_id, "createdAt": "2026-11-21T06:00:00.000Z", "type": "training", "payload": p}


def test_packaged_contracts_are_identical_to_the_repository_ones():
    for name in ("training-job.schema.json", "training-result.schema.json", "training-progress.schema.json"):
        assert (PACKAGED / name).read_bytes() == (REPO / "contracts" / name).read_bytes(), name


def test_job_validation(tmp_path):
    job = job_message("j1", "file:///m", "file:///d.parquet", "file:///out")
    del job["payload"]["extra"]
    assert validate_training_job(job)["payload"]["extra"] == {}
    bad = job_message("j1", "file:///m", "file:///d.parquet", "file:///out", objective="ppo")
    with pytest.raises(ContractError):
        validate_training_job(bad)
    with pytest.raises(ContractError):
        validate_training_result({"version": 1, "id": "x", "type": "training_result", "payload": {}})


def _train(job_path, work, timeout=600):
    return subprocess.run([sys.executable, "-m", "prefloop_worker", "train", "--job", str(job_path), "--work-dir", str(work)],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def test_train_command_publishes_once(random_sd, snapshot_path, tmp_path):
    out = tmp_path / "adapters" / "a1"
    job = job_message("job-1", random_sd.as_uri(), snapshot_path.as_uri(), out.as_uri())
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(job))
    run = _train(job_path, tmp_path / "work")
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.strip().splitlines()]  # stdout: JSON lines only
    result = lines[-1]
    validate_training_result(result)
    progress = lines[:-1]
    assert progress and all(validate_training_progress(m)["type"] == "training_progress" for m in progress)
    assert progress[-1]["payload"]["step"] == 3 and progress[-1]["payload"]["phase"] == "finished"
    metrics_lines = (out / "metrics.jsonl").read_text().splitlines()
    assert sum(len(m["payload"]["metrics"]) for m in progress) == len(metrics_lines)
    assert result["payload"]["status"] == "succeeded" and result["payload"]["adapterUri"] == out.as_uri()
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("adapterId", "jobId", "baseModelId", "baseModelSha256", "objective", "space", "beta", "rank", "alpha",
                "targets", "steps", "datasetSnapshotId", "metrics", "files"):
        assert key in manifest, key
    assert manifest["steps"] == 3 and manifest["targets"] == ["to_q", "to_k", "to_v", "to_out.0"]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "metrics.jsonl", "pytorch_lora_weights.safetensors"]
    stamp = (out / "manifest.json").stat().st_mtime_ns
    again = _train(job_path, tmp_path / "work")
    assert again.returncode == 0
    assert "already published" in again.stderr
    assert (out / "manifest.json").stat().st_mtime_ns == stamp
    assert json.loads(again.stdout.strip().splitlines()[-1])["id"] == result["id"]


def test_invalid_job_exits_2(tmp_path):
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps({"id": "x"}))
    assert _train(job_path, tmp_path / "work").returncode == 2


def test_killed_job_resumes_from_its_checkpoint_and_publishes_once(random_sd, snapshot_path, tmp_path):
    out = tmp_path / "adapters" / "k1"
    job = job_message("job-kill", random_sd.as_uri(), snapshot_path.as_uri(), out.as_uri(), steps=24,
                      extra={"checkpointEvery": 2, "heldoutFraction": 0.3, "heldoutMax": 8, "evalEvery": 100})
    job_path = tmp_path / "job.json"
    job_path.write_text(json.dumps(job))
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "prefloop_worker", "train", "--job", str(job_path), "--work-dir", str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    remote_ckpt = out / ".checkpoint" / "checkpoint.safetensors"
    deadline = time.time() + 300
    while not remote_ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the job finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    run = _train(job_path, work)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "resumed from checkpoint at step" in run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 24 and manifest["jobId"] == "job-kill"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "metrics.jsonl", "pytorch_lora_weights.safetensors"]
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 24  # no duplicated steps after the resume


# --- serve against moto's server mode -------------------------------------------------------------

def test_serve_trains_posts_results_and_dead_letters_poison(random_sd, snapshot_path, tmp_path, moto_endpoint):
    s3, sqs, training, results, dlq = training_world(random_sd, snapshot_path, max_receives=2)

    job = job_message("job-s3", "s3://data/models/tiny", "s3://data/datasets/snap-1", "s3://data/adapters/a-s3", steps=2)
    sqs.send_message(QueueUrl=training, MessageBody=json.dumps(job))
    sqs.send_message(QueueUrl=training, MessageBody="{not json")
    sqs.send_message(QueueUrl=training, MessageBody=json.dumps(job))  # a re-delivery of the same job

    env = {**ENV, **moto_endpoint, "SQS_TRAINING_QUEUE_URL": training, "SQS_RESULTS_QUEUE_URL": results, "LOG_FORMAT": "json"}
    run = subprocess.run([sys.executable, "-m", "prefloop_worker", "serve", "--work-dir", str(tmp_path / "work"),
                          "--wait-seconds", "1", "--retry-delay", "0", "--visibility-timeout", "30", "--idle-exit", "3"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    logs = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]  # as the deploy runs it: JSON only
    assert [entry["level"] for entry in logs if "failed" in entry["msg"]] == ["error", "error"]  # the poison message, twice

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="data", Prefix="adapters/a-s3/").get("Contents", []))
    assert keys == ["adapters/a-s3/manifest.json", "adapters/a-s3/metrics.jsonl", "adapters/a-s3/pytorch_lora_weights.safetensors"]
    manifest = json.loads(s3.get_object(Bucket="data", Key="adapters/a-s3/manifest.json")["Body"].read())
    assert manifest["jobId"] == "job-s3"
    assert run.stderr.count("published s3://data/adapters/a-s3/manifest.json") == 1
    assert "already published" in run.stderr

    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=results, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        bodies += [json.loads(m["Body"]) for m in got]
    progress = [b for b in bodies if b["type"] == "training_progress"]
    assert progress and all(validate_training_progress(b)["payload"]["trainingJobId"] == "job-s3" for b in progress)
    assert max(b["payload"]["step"] for b in progress) == 2  # sent while training, before the result
    bodies = [b for b in bodies if b["type"] == "training_result"]
    assert len(bodies) == 2 and {b["id"] for b in bodies} == {"job-s3.result"}
    for body in bodies:
        validate_training_result(body)
        assert body["payload"]["status"] == "succeeded" and body["payload"]["adapterUri"] == "s3://data/adapters/a-s3"

    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in dead] == ["{not json"]
    left = sqs.get_queue_attributes(QueueUrl=training, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    assert left["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_job_options_map_onto_the_trainer_config():
    from prefloop_worker.train.config import config_from_job

    job = job_message("j", "file:///m", "file:///d", "file:///o", extra={"lambda": 0.5, "tau": 0.1, "captionDropout": 0.1,
                                                                      "absoluteWinners": True, "checkpointEvery": 7})
    cfg = config_from_job(job["payload"], base_model="/m", dataset="/d", output_dir="/o")
    assert (cfg.sft_weight, cfg.rpo_tau, cfg.caption_dropout, cfg.absolute_winners, cfg.checkpoint_every) == (0.5, 0.1, 0.1, True, 7)
    assert (cfg.cpo_variant, cfg.rpo_variant, cfg.ncp_step, cfg.ncp_features) == ("reference", "reference", "ddpm", "last-down")
    assert (cfg.beta, cfg.rank, cfg.batch_size, cfg.gradient_accumulation) == (1000.0, 4, 2, 1)
    job["payload"]["extra"] = {"preset": "diffusion-dpo"}  # the official code's data defaults
    cfg = config_from_job(job["payload"], base_model="/m", dataset="/d", output_dir="/o")
    assert (cfg.flip, cfg.caption_dropout) == (True, 0.2)
    job["payload"]["extra"] = {"preset": "diffusion-dpo", "captionDropout": 0.0, "objectiveVariant": None}
    with pytest.raises(ValueError):
        config_from_job(job["payload"], base_model="/m", dataset="/d", output_dir="/o")
    job["payload"]["extra"] = {"preset": "diffusion-dpo", "captionDropout": 0.0, "cpoVariant": "full-beta-sft", "ncpStep": "ddim"}
    cfg = config_from_job(job["payload"], base_model="/m", dataset="/d", output_dir="/o")
    assert (cfg.flip, cfg.caption_dropout, cfg.cpo_variant, cfg.ncp_step) == (True, 0.0, "full-beta-sft", "ddim")
    for bad in ({"checkpoint_path": "/etc/x"}, {"nope": 1}, {"preset": "mystery"}, {"ncpStep": "euler"}):
        job["payload"]["extra"] = bad
        with pytest.raises(ValueError):
            config_from_job(job["payload"], base_model="/m", dataset="/d", output_dir="/o")
