"""The training loop on a tiny SD-shaped model (random weights unless noted), CPU only."""

import json

import pytest
import synthetic
import torch
from safetensors.torch import load_file

from prefloop_worker.train import trainer as trainer_mod
from prefloop_worker.train.model import adapter_disabled
from prefloop_worker.train.objectives import dpo_inside
from prefloop_worker.train.trainer import PreferenceTrainer, train

PAIR_KEYS = ("loss", "model_mse", "model_mse_w", "grad_norm", "lr")
REF_KEYS = ("implicit_acc", "reward_w", "reward_l", "margin", "ref_mse", "ref_mse_w", "ref_mse_l")
STEP_KEYS = {"dpo": PAIR_KEYS + ("model_mse_l",) + REF_KEYS, "rpo": PAIR_KEYS + ("model_mse_l",) + REF_KEYS,
             "kto": PAIR_KEYS + ("model_mse_l",) + REF_KEYS, "cpo": PAIR_KEYS + ("model_mse_l",), "sft": PAIR_KEYS}


def _setup(cfg):
    tr = PreferenceTrainer(cfg, log=lambda m: None)
    tr._setup()
    return tr


def _batch(tr, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tr._batch(tr.snapshot.probe[:n], g, sample_latents=True, dropout=0.0, train=True)


@pytest.mark.parametrize("space", ["latent", "ncp"])
def test_dpo_with_lora_disabled_is_the_reference(random_sd, snapshot_path, make_cfg, space):
    tr = _setup(make_cfg(random_sd, snapshot_path, space=space))
    batch = _batch(tr)
    # at initialisation (B = 0) the policy is the reference exactly
    d = tr._distances(batch, grad=False)
    assert torch.equal(d["model"], d["ref"])
    # a trained-looking LoRA: policy ≠ reference, but with the LoRA disabled the logits are exactly 0
    with torch.no_grad():
        for p in tr.params:
            p.add_(0.05 * torch.randn_like(p))
    d = tr._distances(batch, grad=False)
    mw, ml = d["model"].chunk(2)
    rw, rl = d["ref"].chunk(2)
    assert not torch.equal(d["model"], d["ref"])
    with adapter_disabled(tr.raw_unet):
        off = tr._distances(batch, grad=False)
    ow, ol = off["model"].chunk(2)
    inside = dpo_inside(ow, ol, rw, rl, tr.cfg.beta)
    assert torch.equal(inside, torch.zeros_like(inside))
    assert not torch.equal(dpo_inside(mw, ml, rw, rl, tr.cfg.beta), torch.zeros_like(inside))


@pytest.mark.parametrize("objective", ["dpo", "cpo", "sft", "rpo", "kto"])
@pytest.mark.parametrize("space", ["latent", "ncp"])
def test_every_objective_and_space_runs(random_sd, snapshot_path, make_cfg, objective, space):
    if synthetic.tiny_shapes_ready():
        pytest.skip("covered by test_learning on the tiny model (same checks, and it learns)")
    cfg = make_cfg(random_sd, snapshot_path, name=f"{objective}-{space}", objective=objective, space=space, steps=2)
    result = train(cfg, log=lambda m: None)
    assert result.completed and result.steps == 2
    lines = [json.loads(x) for x in open(cfg.metrics_path)]
    steps = [r for r in lines if r["step"] > 0]
    assert len(steps) == 2
    for key in STEP_KEYS[objective]:
        assert all(key in r and r[key] == r[key] for r in steps), key
    assert "heldout_implicit_acc" in lines[0] and "heldout_implicit_acc" in steps[-1]
    assert lines[0]["heldout_implicit_acc"] == 0.5  # policy = reference: every logit is an exact tie
    assert (result.adapter_dir / "pytorch_lora_weights.safetensors").exists()


def test_rpo_weights_outside_with_diagonal_weights_trains_like_dpo(random_sd, snapshot_path, make_cfg, monkeypatch):
    dpo = train(make_cfg(random_sd, snapshot_path, name="dpo", steps=2), log=lambda m: None)
    monkeypatch.setattr(trainer_mod, "rpo_weights", lambda a, b, tau: torch.eye(a.shape[0]))
    rpo = train(make_cfg(random_sd, snapshot_path, name="rpo", objective="rpo", rpo_variant="weights-outside", steps=2),
                log=lambda m: None)
    a = load_file(dpo.adapter_dir / "pytorch_lora_weights.safetensors")
    b = load_file(rpo.adapter_dir / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_interruption_gives_the_same_weights(random_sd, snapshot_path, make_cfg):
    common = dict(steps=5, checkpoint_every=2, caption_dropout=0.2, flip=True, gradient_accumulation=2)
    straight = train(make_cfg(random_sd, snapshot_path, name="straight", **common), log=lambda m: None)
    cfg = make_cfg(random_sd, snapshot_path, name="resumed", checkpoint_path=None, **common)
    cfg.checkpoint_path = str(cfg.metrics_path).replace("metrics.jsonl", "ckpt.safetensors")
    cfg.stop_after = 3  # stops (checkpointed) after step 3: between two periodic checkpoints
    first = train(cfg, log=lambda m: None)
    assert not first.completed and first.steps == 3
    cfg.stop_after = None
    second = train(cfg, log=lambda m: None)
    assert second.completed and second.resumed_from == 3
    a = load_file(straight.adapter_dir / "pytorch_lora_weights.safetensors")
    b = load_file(second.adapter_dir / "pytorch_lora_weights.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    la = [json.loads(x) for x in open(make_cfg(random_sd, snapshot_path, name="straight").metrics_path)]
    lb = [json.loads(x) for x in open(cfg.metrics_path)]
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    assert [r.get("loss") for r in la] == [r.get("loss") for r in lb]


def test_non_finite_steps_are_skipped_and_counted(random_sd, snapshot_path, make_cfg, monkeypatch):
    real = trainer_mod.preference_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        terms = real(*args, **kwargs)
        if not torch.is_grad_enabled():  # evaluation
            return terms
        calls["n"] += 1
        if calls["n"] == 2:
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(trainer_mod, "preference_loss", flaky)
    cfg = make_cfg(random_sd, snapshot_path, steps=3, eval_every=100)
    result = train(cfg, log=lambda m: None)
    lines = [json.loads(x) for x in open(cfg.metrics_path) if '"loss"' in x]
    assert [r["skipped_steps"] for r in lines] == [0, 1, 1]
    assert result.metrics["skipped_steps"] == 1
    weights = load_file(result.adapter_dir / "pytorch_lora_weights.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_adapter_loads_in_diffusers_and_changes_images(random_sd, snapshot_path, make_cfg):
    from diffusers import StableDiffusionPipeline

    cfg = make_cfg(random_sd, snapshot_path, steps=3, rank=4, alpha=8.0, learning_rate=2e-2)
    tr = PreferenceTrainer(cfg, log=lambda m: None)
    result = tr.train()
    pipe = StableDiffusionPipeline.from_pretrained(random_sd, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)

    def sample():
        g = torch.Generator().manual_seed(0)
        return pipe("a red circle on a blue background", num_inference_steps=2, generator=g, output_type="np").images

    before = sample()
    pipe.load_lora_weights(str(result.adapter_dir))
    after = sample()
    assert abs(after - before).max() > 1e-3
    # the loaded adapter (alpha/rank = 2 from the saved metadata) reproduces the trainer's UNet
    x = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([10, 500])
    h = torch.randn(2, 77, pipe.text_encoder.config.hidden_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours = tr.raw_unet(x, t, h).sample
        theirs = pipe.unet(x, t, h).sample
        with adapter_disabled(tr.raw_unet):
            base = tr.raw_unet(x, t, h).sample
    assert (ours - base).abs().max() > 1e-4
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_the_cache_is_bounded_in_bytes_and_changes_nothing(random_sd, snapshot_path, make_cfg):
    cached = PreferenceTrainer(make_cfg(random_sd, snapshot_path, name="c1", steps=2, eval_every=-1), log=lambda m: None)
    a = cached.train()
    assert cached.encoder.cache.bytes > 0
    small = PreferenceTrainer(make_cfg(random_sd, snapshot_path, name="c2", steps=2, eval_every=-1, cache_bytes=40_000),
                              log=lambda m: None)
    b = small.train()
    assert 0 < small.encoder.cache.bytes <= 40_000 < cached.encoder.cache.bytes
    wa = load_file(a.adapter_dir / "pytorch_lora_weights.safetensors")
    wb = load_file(b.adapter_dir / "pytorch_lora_weights.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_ncp_features_are_the_unets_own_down_and_mid_block_outputs(random_sd):
    from diffusers import UNet2DConditionModel

    from prefloop_worker.train.spaces import NoiseConditionedFeatures

    model = synthetic.TINY_SHAPES if synthetic.tiny_shapes_ready() else random_sd
    unet = UNet2DConditionModel.from_pretrained(model / "unet").eval()
    features = NoiseConditionedFeatures(unet, "sum-levels")
    seen = []
    for block in [*unet.down_blocks, unet.mid_block]:
        block.register_forward_hook(lambda m, i, o: seen.append(o[0] if isinstance(o, tuple) else o))
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 4, 16, 16, generator=g), torch.tensor([10, 500])
    h = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        unet(x, t, h)
        ours = features(x, t, h)
    assert len(ours) == len(seen) == len(unet.down_blocks) + 1
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours, seen))
    expected = list(seen)  # (copies made below carry the hooks too, and append to `seen`)
    with torch.no_grad():  # the reference's default: the last down block's output only; --use_middle_states: the mid block
        assert torch.allclose(NoiseConditionedFeatures(unet, "last-down")(x, t, h)[0], expected[-2], atol=1e-6)
        assert torch.allclose(NoiseConditionedFeatures(unet, "mid")(x, t, h)[0], expected[-1], atol=1e-6)
