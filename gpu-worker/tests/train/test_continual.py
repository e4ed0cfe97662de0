"""Training from a parent adapter, progress messages, safe checkpoints, the passes each objective
runs, the NCP step, and the GPU-only options falling back on the CPU (random tiny model, CPU)."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from prefloop_worker.jobs.runner import progress_message
from prefloop_worker.train.model import load_lora_state, read_adapter
from prefloop_worker.train.trainer import PreferenceTrainer, train

HERE = Path(__file__).parent
WEIGHTS = "pytorch_lora_weights.safetensors"
QUIET = dict(log=lambda m: None)


@pytest.fixture(scope="module")
def parent_dir(random_sd, snapshot_path, tmp_path_factory):
    from prefloop_worker.train.config import TrainConfig

    out = tmp_path_factory.mktemp("parent")
    cfg = TrainConfig(base_model=str(random_sd), dataset=str(snapshot_path), output_dir=str(out / "adapter"), beta=1000.0,
                      steps=2, learning_rate=2e-2, batch_size=4, seed=5, heldout_fraction=0.3, heldout_max=4, eval_every=-1,
                      progress=False)
    return train(cfg, **QUIET).adapter_dir


def _unet_with(random_sd, adapter_dir):
    from diffusers import UNet2DConditionModel

    from prefloop_worker.train.model import add_lora

    unet = UNet2DConditionModel.from_pretrained(random_sd / "unet").eval()
    add_lora(unet, 4, 4.0)
    tensors, _ = read_adapter(adapter_dir)
    load_lora_state(unet, tensors)
    return unet


def _inputs(unet):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 16, 16, generator=g)
    h = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    return x, torch.tensor([10, 700]), h


def test_a_child_trained_zero_steps_is_its_parent(random_sd, snapshot_path, make_cfg, parent_dir):
    cfg = make_cfg(random_sd, snapshot_path, name="child0", steps=0, eval_every=-1, parent_adapter=str(parent_dir),
                   parent_adapter_id="parent-1")
    child = train(cfg, **QUIET)
    a, b = load_file(parent_dir / WEIGHTS), load_file(child.adapter_dir / WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(v.abs().max() > 0 for k, v in a.items() if "lora_B" in k)  # the parent is not the base
    parent_unet, child_unet = _unet_with(random_sd, parent_dir), _unet_with(random_sd, child.adapter_dir)
    x, t, h = _inputs(parent_unet)
    with torch.no_grad():
        assert torch.equal(parent_unet(x, t, h).sample, child_unet(x, t, h).sample)


def test_the_childs_reference_is_the_parent(random_sd, snapshot_path, make_cfg, parent_dir):
    tr = PreferenceTrainer(make_cfg(random_sd, snapshot_path, name="child", parent_adapter=str(parent_dir)), **QUIET)
    tr._setup()
    with torch.no_grad():
        for p in tr.params:  # the policy moves away from the parent
            p.add_(0.05 * torch.randn_like(p))
    policy_before = {k: p.detach().clone() for k, p in tr.lora_params.items()}
    parent_unet = _unet_with(random_sd, parent_dir)
    x, t, h = _inputs(parent_unet)
    with torch.no_grad():
        with tr.reference():
            ref = tr.raw_unet(x, t, h).sample
        policy = tr.raw_unet(x, t, h).sample
        expected = parent_unet(x, t, h).sample
    assert torch.allclose(ref, expected, atol=1e-6)
    assert not torch.allclose(policy, expected, atol=1e-4)
    assert all(torch.equal(p, policy_before[k]) for k, p in tr.lora_params.items())  # restored after the reference pass
    # and at step 0 a child's held-out logits are exact ties: policy = reference = parent
    first = PreferenceTrainer(make_cfg(random_sd, snapshot_path, name="child-eval", parent_adapter=str(parent_dir)), **QUIET)
    first._setup()
    assert first.evaluate()["heldout_implicit_acc"] == 0.5


def test_an_incompatible_parent_fails_naming_it(random_sd, snapshot_path, make_cfg, parent_dir):
    cfg = make_cfg(random_sd, snapshot_path, name="rank8", rank=8, alpha=8.0, parent_adapter=str(parent_dir),
                   parent_adapter_id="champion-7")
    with pytest.raises(ValueError, match="parent adapter champion-7 is incompatible.*rank 4 ≠ 8"):
        PreferenceTrainer(cfg, **QUIET)._setup()


def test_a_parent_of_another_base_model_fails_the_job(tmp_path, parent_dir):
    from prefloop_worker.jobs.runner import fetch_parent

    folder = tmp_path / "p"
    folder.mkdir()
    (folder / WEIGHTS).write_bytes((parent_dir / WEIGHTS).read_bytes())
    (folder / "manifest.json").write_text(json.dumps({"adapterId": "a-1", "baseModelSha256": "f" * 64}))
    payload = {"parentAdapterUri": folder.as_uri(), "parentAdapterId": "a-1"}
    with pytest.raises(ValueError, match="parent adapter a-1 was trained on another base model"):
        fetch_parent(payload, tmp_path / "blobs", "0" * 64)
    assert fetch_parent(payload, tmp_path / "blobs", "f" * 64) == (folder, "a-1")
    with pytest.raises(FileNotFoundError, match="parent adapter a-2"):
        fetch_parent({"parentAdapterUri": (tmp_path / "nothing").as_uri(), "parentAdapterId": "a-2"}, tmp_path / "b", "0" * 64)


def test_progress_messages_carry_every_metrics_line(random_sd, snapshot_path, make_cfg):
    seen = []
    cfg = make_cfg(random_sd, snapshot_path, name="progress", steps=5, eval_every=2, progress_every=2, heldout_max=2, eval_draws=1)
    train(cfg, on_progress=seen.append, **QUIET)
    job = {"id": "job-p", "payload": {"adapterId": "adapter-p"}}
    messages = [progress_message(job, p) for p in seen]  # validated against the schema
    assert [m["payload"]["step"] for m in messages] == [0, 2, 4, 5]
    assert [m["payload"]["phase"] for m in messages] == ["evaluation", "evaluation", "evaluation", "finished"]
    assert len({m["id"] for m in messages}) == len(messages)
    rows = [r for m in messages for r in m["payload"]["metrics"]]
    lines = [json.loads(x) for x in open(cfg.metrics_path)]
    assert [r["step"] for r in rows] == [r["step"] for r in lines] == [0, 1, 2, 3, 4, 5]
    assert rows[3]["loss"] == lines[3]["loss"]
    assert all(m["payload"]["totalSteps"] == 5 for m in messages)
    assert messages[-1]["payload"]["etaSeconds"] == 0


class _Trap:
    """Unpickling this creates a file: proof that a checkpoint was (or was not) unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_checkpoints_are_safetensors_and_a_pickle_is_never_loaded(random_sd, snapshot_path, make_cfg, tmp_path):
    ckpt = tmp_path / "ckpt.safetensors"
    marker = tmp_path / "unpickled"
    ckpt.write_bytes(pickle.dumps({"step": 1, "trap": _Trap(str(marker))}))
    logs = []
    cfg = make_cfg(random_sd, snapshot_path, name="ck", steps=3, checkpoint_path=str(ckpt), stop_after=2, eval_every=-1)
    result = train(cfg, log=logs.append)
    assert not marker.exists() and any("ignoring checkpoint" in m for m in logs)
    assert not result.completed
    with safe_open(str(ckpt), framework="pt") as fh:
        state = json.loads(fh.metadata()["state"])
        assert any(k.startswith("s.lora.") for k in fh.keys())
    assert "__dict__" in state


def _count_unet_calls(tr):
    calls = []
    tr.raw_unet.register_forward_pre_hook(lambda m, args: calls.append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize("objective,expected", [("sft", [4]), ("cpo", [8]), ("dpo", [8, 8]), ("kto", [8, 8])])
def test_a_step_runs_only_the_passes_its_objective_uses(random_sd, snapshot_path, make_cfg, objective, expected):
    tr = PreferenceTrainer(make_cfg(random_sd, snapshot_path, name=objective, objective=objective, steps=1, eval_every=-1),
                           **QUIET)
    tr._setup()
    calls = _count_unet_calls(tr)
    tr._setup = lambda: None  # already set up
    tr.train()
    assert calls == expected  # UNet batch sizes: 4 pairs → 4 winners or 8 images


def test_ncp_ddpm_step_is_diffusers_ddpm_step_with_shared_variance_noise(random_sd):
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from prefloop_worker.train.spaces import NCPSpace

    scheduler = DDPMScheduler.from_pretrained(random_sd / "scheduler")
    unet = UNet2DConditionModel.from_pretrained(random_sd / "unet")
    space = NCPSpace(scheduler, unet)
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    for t in (1, 2, 500, 999):
        ours = space._step(eps, x, torch.tensor([t]), torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(t)))
        theirs = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        assert torch.allclose(ours, theirs, atol=1e-5), t
    # at t = 0 the reference clamps t-1 to 0 (ᾱ_0, not diffusers' 1): a step that leaves x_0 where it is
    assert torch.allclose(space._step(eps, x, torch.tensor([0]), torch.randn(1, 4, 16, 16, generator=g)), x, atol=1e-6)
    # the target is the same step with the true noise, and the same variance noise for policy and target
    latents = torch.randn(2, 4, 16, 16, generator=g)
    noise = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([400, 400])
    noisy = scheduler.add_noise(latents, noise, t)
    var = torch.randn(2, 4, 16, 16, generator=g)
    state = space.prepare(latents, noise, noisy, t, torch.zeros(2, 77, 32), var)
    assert torch.equal(state[1], t - 1)
    d = space.distance(noise, state, noisy, t, torch.zeros(2, 77, 32))  # a perfect prediction
    assert torch.allclose(d, torch.zeros(2), atol=1e-10)


def test_gpu_only_options_fall_back_on_the_cpu(random_sd, snapshot_path, make_cfg):
    logs = []
    cfg = make_cfg(random_sd, snapshot_path, name="fallback", optimizer="adamw8bit", mixed_precision="fp16", steps=1,
                   eval_every=-1, gradient_checkpointing=True)
    tr = PreferenceTrainer(cfg, log=logs.append)
    result = tr.train()
    assert tr.optimizer_name == "adamw" and tr.weight_dtype == torch.float32
    assert any("8-bit AdamW needs CUDA" in m for m in logs) and any("fp16 needs a GPU" in m for m in logs)
    plain = train(make_cfg(random_sd, snapshot_path, name="plain", steps=1, eval_every=-1), **QUIET)
    a, b = load_file(result.adapter_dir / WEIGHTS), load_file(plain.adapter_dir / WEIGHTS)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # gradient checkpointing changes no number


def test_a_resumed_two_process_run_equals_an_uninterrupted_one(random_sd, snapshot_path, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}

    def launch(name, *extra):
        port = 29500 + (os.getpid() + len(name)) % 2000
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
               str(HERE / "two_process_run.py"), str(random_sd), str(snapshot_path), str(tmp_path / name), *extra]
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        return tmp_path / name

    straight = launch("straight")
    resumed = launch("resumed", "--stop-after", "2")
    assert not (resumed / "adapter" / WEIGHTS).exists()
    launch("resumed")
    a, b = load_file(straight / "adapter" / WEIGHTS), load_file(resumed / "adapter" / WEIGHTS)
    assert all(torch.equal(a[k], b[k]) for k in a)
    ranks = json.loads((resumed / "ranks.json").read_text())
    assert ranks["world"] == 2 and ranks["resumed_from"] == 2
