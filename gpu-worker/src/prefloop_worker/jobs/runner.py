"""Running one training job: fetch inputs, train (resuming from a checkpoint), publish, report.

Publishing is atomic at the adapter level: the weights and metrics are written first, the
``manifest.json`` last; an adapter without its manifest is incomplete and the platform ignores it.
A job whose manifest already carries its id is finished: running it again publishes nothing and
returns the same result message (same message id) as the first run.

The checkpoint lives next to the output (``<outputUri>/.checkpoint/checkpoint.safetensors``) so a
re-run on another machine resumes; it is removed once the manifest is published. It is a
safetensors file (tensors + JSON): loading it unpickles nothing. The metrics written so far are
mirrored with it (``.checkpoint/metrics.jsonl``, uploaded before the checkpoint), so an adapter
finished on another machine still publishes every step's metrics line once.

With ``parentAdapterUri`` the parent's files are fetched first; a parent that is missing, was
trained on another base model (``baseModelSha256``) or whose LoRA differs in rank, alpha, keys or
shapes fails the job with a message naming it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path

from ..logs import stderr_log
from . import blobstore
from .contracts import validate_training_job, validate_training_progress, validate_training_result

MANIFEST = "manifest.json"
WEIGHTS = "pytorch_lora_weights.safetensors"
METRICS = "metrics.jsonl"
CHECKPOINT = ".checkpoint/checkpoint.safetensors"
CHECKPOINT_METRICS = ".checkpoint/metrics.jsonl"
MANIFEST_FORMAT = "prefloop.adapter/v1"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def result_id(job_id: str, suffix: str = "result") -> str:
    rid = f"{job_id}.{suffix}"
    if len(rid) <= 128:
        return rid
    return f"{suffix}." + hashlib.sha256(job_id.encode()).hexdigest()


def progress_message(job: dict, progress: dict) -> dict:
    """A ``training_progress`` message (id ``<job id>.progress.<step>``) from the trainer's report."""
    payload = job["payload"]
    message = {
        "version": 1,
        "id": result_id(job["id"], f"progress.{progress['step']}"),
        "createdAt": now_iso(),
        "type": "training_progress",
        "payload": {
            "trainingJobId": job["id"],
            "adapterId": payload["adapterId"],
            "step": int(progress["step"]),
            "totalSteps": int(progress["totalSteps"]),
            "stepsPerSecond": _finite_or_none(progress.get("stepsPerSecond")),
            "etaSeconds": _finite_or_none(progress.get("etaSeconds")),
            "phase": progress.get("phase", "training"),
            "metrics": progress.get("metrics", []),
        },
    }
    return validate_training_progress(message)


def _finite_or_none(value):
    if value is None or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf") or value < 0:
        return None
    return float(value)


def fetch_parent(payload: dict, blobs: Path, base_sha256: str) -> tuple[Path, str]:
    """The parent adapter's local folder and name, checked against this job's base model."""
    uri = payload["parentAdapterUri"].rstrip("/")
    name = payload.get("parentAdapterId") or uri
    if not blobstore.exists(blobstore.join(uri, WEIGHTS)):
        raise FileNotFoundError(f"parent adapter {name}: no {WEIGHTS} at {uri}")
    local = blobstore.fetch(uri, blobs)
    manifest_path = local / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        theirs = manifest.get("baseModelSha256")
        if theirs and theirs != base_sha256:
            raise ValueError(f"parent adapter {name} was trained on another base model "
                             f"(baseModelSha256 {theirs[:12]}…, this job's base {base_sha256[:12]}…)")
        if payload.get("parentAdapterId") and manifest.get("adapterId") not in (None, payload["parentAdapterId"]):
            raise ValueError(f"parent adapter {name}: the manifest at {uri} is adapter {manifest.get('adapterId')}")
    return local, name


def result_message(job: dict, status: str, adapter_uri: str | None, metrics: dict | None = None, error: str | None = None) -> dict:
    payload = job.get("payload") or {}
    numbers = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    message = {
        "version": 1,
        "id": result_id(job["id"]),
        "createdAt": now_iso(),
        "type": "training_result",
        "payload": {
            "trainingJobId": job["id"],
            "adapterId": payload.get("adapterId", job["id"]),
            "status": status,
            "adapterUri": adapter_uri,
            "metrics": {k: v for k, v in numbers.items() if v == v and abs(v) != float("inf")},
            "error": error,
        },
    }
    return validate_training_result(message)


def default_work_dir() -> Path:
    return Path(os.environ.get("PREFLOOP_WORK_DIR") or Path.home() / ".cache" / "prefloop-worker")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def published_manifest(output_uri: str) -> dict | None:
    uri = blobstore.join(output_uri, MANIFEST)
    if not blobstore.exists(uri):
        return None
    return json.loads(blobstore.read_bytes(uri))


def run_job(job: dict, *, work_dir: str | os.PathLike | None = None, log=None, on_progress=None, **train_overrides) -> dict:
    """Run (or resume, or recognise as done) one training job; return its result message.

    ``on_progress`` receives each ``training_progress`` message (validated). Raises on failure;
    the caller decides whether that is reported (see ``failure_result``).
    """
    from ..family import model_family
    from ..train.config import config_from_job
    from ..train.model import LORA_TARGETS, model_sha256
    from ..train.objectives import formula
    from ..train.trainer import train

    log = log or stderr_log(job_id=job.get("id") if isinstance(job, dict) else None)
    job = validate_training_job(job)
    payload = job["payload"]
    output = payload["outputUri"].rstrip("/")

    existing = published_manifest(output)
    if existing is not None:
        if existing.get("jobId") != job["id"]:
            raise RuntimeError(f"{output} already holds adapter {existing.get('adapterId')} of job {existing.get('jobId')}")
        log(f"[job {job['id']}] already published at {output}; nothing to do")
        return result_message(job, "succeeded", output, existing.get("metrics"))

    work = Path(work_dir or default_work_dir())
    job_dir = work / "jobs" / job["id"]
    job_dir.mkdir(parents=True, exist_ok=True)
    blobs = work / "blobs"
    base_path = blobstore.fetch(payload["baseModelUri"], blobs)
    dataset_path = blobstore.fetch(payload["datasetUri"], blobs)
    base_sha256 = model_sha256(base_path)
    family = model_family(base_path)
    parent_path, parent_name = (None, None)
    if payload.get("parentAdapterUri"):
        parent_path, parent_name = fetch_parent(payload, blobs, base_sha256)

    local_ckpt = job_dir / "checkpoint.safetensors"
    remote_ckpt = blobstore.join(output, CHECKPOINT)
    metrics_file = job_dir / METRICS
    remote_metrics = blobstore.join(output, CHECKPOINT_METRICS)
    if not local_ckpt.exists() and blobstore.exists(remote_ckpt):
        log(f"[job {job['id']}] fetching checkpoint {remote_ckpt}")
        blobstore.write_bytes(local_ckpt.as_uri(), blobstore.read_bytes(remote_ckpt))
        if blobstore.exists(remote_metrics):  # the trainer drops any line past the checkpoint's step
            blobstore.write_bytes(metrics_file.as_uri(), blobstore.read_bytes(remote_metrics))

    def mirror_checkpoint(path, step):
        if metrics_file.exists():  # first: the mirrored metrics always reach the mirrored checkpoint's step
            blobstore.upload_file(metrics_file, remote_metrics)
        blobstore.upload_file(path, remote_ckpt)

    cfg = config_from_job(
        payload,
        base_model=str(base_path),
        dataset=str(dataset_path),
        output_dir=str(job_dir / "adapter"),
        checkpoint_path=str(local_ckpt),
        metrics_path=str(metrics_file),
        parent_adapter=str(parent_path) if parent_path else None,
        parent_adapter_id=parent_name,
        **train_overrides,
    )
    if not cfg.checkpoint_every:
        cfg.checkpoint_every = max(1, min(500, cfg.steps // 10))
    log(f"[job {job['id']}] {cfg.objective}/{cfg.space} β={cfg.beta:g} rank={cfg.rank} steps={cfg.steps} → {output}")
    started = time.time()
    report = (lambda progress: on_progress(progress_message(job, progress))) if on_progress else None
    result = train(cfg, read_blob=blobstore.read_bytes, on_checkpoint=mirror_checkpoint, on_progress=report, log=log)
    if not result.completed:
        raise InterruptedError(f"training stopped at step {result.steps}")
    if result.adapter_dir is None:  # not the main process of a multi-process run
        return result_message(job, "succeeded", output, result.metrics)

    weights = Path(result.adapter_dir) / WEIGHTS
    manifest = {
        "format": MANIFEST_FORMAT,
        "adapterId": payload["adapterId"],
        "jobId": job["id"],
        "createdAt": now_iso(),
        "baseModelId": payload["baseModelId"],
        "baseModelUri": payload["baseModelUri"],
        "baseModelSha256": base_sha256,
        "family": family.name,
        "pipeline": family.pipeline,
        "parentAdapterId": payload.get("parentAdapterId") if parent_path else None,
        "parentAdapterUri": payload.get("parentAdapterUri"),
        "datasetSnapshotId": payload["datasetSnapshotId"],
        "datasetUri": payload["datasetUri"],
        "objective": cfg.objective,
        "space": cfg.space,
        "beta": cfg.beta,
        "objectiveVariant": cfg.variant,
        "formula": formula(cfg.objective, cfg.variant),
        "betaConvention": beta_convention(cfg),
        "spaceOptions": {"ncpStep": cfg.ncp_step, "ncpFeatures": cfg.ncp_features} if cfg.space == "ncp" else {},
        "rank": cfg.rank,
        "alpha": cfg.alpha,
        "loraScale": cfg.alpha / cfg.rank,
        "targets": list(LORA_TARGETS),
        "steps": result.steps,
        "learningRate": cfg.learning_rate,
        "batchSize": cfg.batch_size,
        "gradientAccumulation": cfg.gradient_accumulation,
        "seed": cfg.seed,
        "options": payload.get("extra") or {},
        "metrics": result.metrics,
        "trainingSeconds": time.time() - started,
        "files": {
            WEIGHTS: {"sha256": _sha256(weights), "bytes": weights.stat().st_size},
            METRICS: {"sha256": _sha256(metrics_file), "bytes": metrics_file.stat().st_size} if metrics_file.exists() else None,
        },
    }
    publish(output, weights, metrics_file if metrics_file.exists() else None, manifest)
    log(f"[job {job['id']}] published {output}/{MANIFEST}")
    for mirrored in (remote_metrics, remote_ckpt):
        if blobstore.exists(mirrored):
            blobstore.delete(mirrored)
    local_ckpt.unlink(missing_ok=True)
    return result_message(job, "succeeded", output, result.metrics)


def beta_convention(cfg) -> str:
    """How this run used β, in words (the manifest's ``betaConvention``)."""
    if cfg.objective == "sft":
        return "beta unused by the loss (SFT); implicit rewards for metrics: -0.5*beta*(dmodel - dref)"
    if cfg.objective == "cpo" and cfg.variant == "full-beta-sft":
        return "full beta inside the sigmoid: -logsigmoid(-beta*(dmodel_w - dmodel_l))"
    return ("official Diffusion-DPO beta with the 1/2: the sigmoid's argument is 0.5*beta*(...) "
            f"({cfg.objective}'s reference-code temperature = 0.5*beta)")


def publish(output: str, weights: Path, metrics_file: Path | None, manifest: dict) -> None:
    """Files first, manifest last: a reader that sees the manifest sees a complete adapter."""
    blobstore.upload_file(weights, blobstore.join(output, WEIGHTS))
    if metrics_file is not None:
        blobstore.upload_file(metrics_file, blobstore.join(output, METRICS))
    blobstore.write_bytes(blobstore.join(output, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True).encode())


def failure_result(job: dict, error: BaseException | str) -> dict | None:
    """A ``failed`` result message for a job with a usable id, else None."""
    if not isinstance(job, dict) or not isinstance(job.get("id"), str):
        return None
    try:
        return result_message(job, "failed", None, None, str(error)[:4000])
    except Exception:
        return None
