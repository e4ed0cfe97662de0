"""The preference trainer: one loop for every objective × space, LoRA out.

One optimisation step = ``gradient_accumulation`` micro-steps of ``batch_size`` pairs per process.
Each micro-step: the two images of a pair get the same noise and timestep (KTO: each image its
own, as Diffusion-KTO samples them); the UNet with its LoRA (policy) and the reference (the LoRA
disabled, or the parent's LoRA swapped in: no second UNet, no grad) predict; the space turns
predictions into per-image distances; the objective turns distances into a loss. Passes an
objective does not use are skipped: SFT runs the policy on winners only, CPO has no reference.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..conditioning import time_ids
from ..data.images import load_image, paired_crop
from ..data.snapshot import PairStream, PreferencePair, SnapshotOptions, SnapshotScan, scan
from ..logs import stderr_log
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .model import (
    BaseModel,
    adapter_disabled,
    add_lora,
    check_compatible,
    load_base_model,
    lora_parameter_map,
    lora_parameters,
    lora_weights_swapped,
    make_optimizer,
    read_adapter,
    save_diffusers_lora,
)
from .objectives import dpo_inside, implicit_accuracy, kto_loss, preference_loss, rpo_weights
from .spaces import LatentSpace, make_space

CHECKPOINT_VERSION = 2


@dataclass
class TrainResult:
    adapter_dir: Path | None
    steps: int
    metrics: dict = field(default_factory=dict)
    completed: bool = True
    resumed_from: int = 0


class Interrupted(Exception):
    pass


class BoundedCache:
    """A dict that stops taking entries once its tensors reach ``max_bytes`` (no eviction: with
    shuffled access an evicting cache mostly misses)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes, self.data = max(0, int(max_bytes)), 0, {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, tensors: tuple[torch.Tensor, ...]) -> None:
        size = sum(t.numel() * t.element_size() for t in tensors)
        if key in self.data or self.bytes + size > self.max_bytes:
            return
        self.data[key] = tensors
        self.bytes += size


class PairEncoder:
    """Images → VAE latent distributions and captions → text embeddings, cached up to
    ``cfg.cache_bytes`` (latents unless ``random_crop``)."""

    def __init__(self, base: BaseModel, cfg: TrainConfig, device, dtype, base_dir: str, read_blob=None):
        self.base, self.cfg, self.device, self.dtype = base, cfg, device, dtype
        self.base_dir, self.read_blob = base_dir, read_blob
        self.resolution = cfg.resolution or base.resolution
        self.scaling = float(base.vae.config.scaling_factor)
        self.cache = BoundedCache(cfg.cache_bytes)

    @torch.no_grad()
    def text(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = sorted({c for c in captions if self.cache.get(("text", c)) is None})
        fresh = {}
        if missing:
            hidden, pooled = self.base.encode_prompts(missing, self.device)
            for j, caption in enumerate(missing):
                fresh[caption] = (hidden[j].to(self.dtype).clone(), pooled[j].float().clone())  # not views of the batch
                self.cache.put(("text", caption), fresh[caption])
        got = [fresh.get(c) or self.cache.get(("text", c)) for c in captions]
        return torch.stack([g[0] for g in got]), torch.stack([g[1] for g in got])

    def _views(self, pair: PreferencePair, flip: bool, generator=None):
        w = load_image(pair.winner, self.base_dir, self.read_blob)
        l = load_image(pair.loser, self.base_dir, self.read_blob)
        return paired_crop(w, l, self.resolution, random_crop=self.cfg.random_crop, flip=flip, generator=generator)

    @torch.no_grad()
    def latent_dists(self, pairs: list[PreferencePair], flips: list[bool], generator=None):
        """(mean, std) of first and second latents (4 tensors ``[B, C, h, w]``) and each pair's
        SDXL time ids ``[B, 6]``: its original size, crop top-left and the training resolution."""
        cacheable = not self.cfg.random_crop
        keys = [(pair.key, f) for pair, f in zip(pairs, flips)]
        found = {k: self.cache.get(("latent", k)) for k in keys} if cacheable else {}
        todo = [i for i, k in enumerate(keys) if found.get(k) is None]
        if todo:
            views = [self._views(pairs[i], flips[i], generator) for i in todo]
            pixels = torch.stack([v.first for v in views] + [v.second for v in views])
            dist = self.base.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
            mean, std = dist.mean.float(), dist.std.float()
            size = (self.resolution, self.resolution)
            ids = time_ids([v.original_size for v in views], [v.crop_top_left for v in views], size).to(self.device)
            n = len(todo)
            for j, i in enumerate(todo):
                entry = (mean[j], std[j], mean[n + j], std[n + j], ids[j])
                found[keys[i]] = entry
                if cacheable:
                    self.cache.put(("latent", keys[i]), tuple(t.clone() for t in entry))
        return tuple(torch.stack([found[k][c] for k in keys]) for c in range(5))


@dataclass
class Batch:
    latents: torch.Tensor  # [images·B, C, h, w]: firsts (winners), then seconds (losers) unless winners_only
    noise: torch.Tensor
    timesteps: torch.Tensor
    hidden: torch.Tensor
    pooled: torch.Tensor  # [B, D] per pair
    variance_noise: torch.Tensor | None
    desirable: torch.Tensor  # [images·B] bools (KTO)
    winners_only: bool
    added: dict | None = None  # SDXL: the UNet's added_cond_kwargs per image (text_embeds, time_ids)


class PreferenceTrainer:
    def __init__(self, cfg: TrainConfig, *, read_blob=None, log=None, on_checkpoint=None, on_progress=None, accelerator=None):
        from accelerate import Accelerator

        self.cfg = cfg
        self.read_blob = read_blob
        self.on_checkpoint = on_checkpoint
        self.on_progress = on_progress
        self._log = log or stderr_log()
        self.precision_note = None
        if accelerator is None:
            accelerator = Accelerator(mixed_precision=self._precision(cfg.mixed_precision), cpu=not torch.cuda.is_available())
        self.accelerator = accelerator

    def _precision(self, wanted: str) -> str:
        cuda = torch.cuda.is_available()
        if wanted == "auto":
            if not cuda:
                return "no"
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if wanted in ("fp16", "bf16") and not cuda:
            self.precision_note = f"mixedPrecision {wanted} needs a GPU; training in fp32 on the CPU"
            return "no"
        return wanted

    def log(self, msg: str) -> None:
        if self.accelerator.is_main_process:
            self._log(f"[train] {msg}")

    # setup ------------------------------------------------------------------------------------
    def _setup(self):
        cfg, acc = self.cfg, self.accelerator
        device = acc.device
        if self.precision_note:
            self.log(self.precision_note)
        self.weight_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(acc.mixed_precision, torch.float32)
        base = load_base_model(cfg.base_model)
        for text_encoder in base.text_encoders:
            text_encoder.to(device, self.weight_dtype)
        base.vae.to(device, self.weight_dtype)
        base.unet.to(device, self.weight_dtype)
        self.base = base
        self.space = make_space(cfg.space, base.noise_scheduler, base.unet, cfg.ncp_sampler_steps, cfg.ncp_step,
                                cfg.ncp_features).to(device)
        self.latent_space = LatentSpace(base.noise_scheduler).to(device)
        self.lora_config = add_lora(base.unet, cfg.rank, cfg.alpha, init_seed=cfg.seed)
        self.params = lora_parameters(base.unet)
        self.lora_params = lora_parameter_map(base.unet)
        self.parent = None
        if cfg.parent_adapter:
            tensors, config = read_adapter(cfg.parent_adapter)
            name = cfg.parent_adapter_id or cfg.parent_adapter
            check_compatible(base.unet, tensors, config, rank=cfg.rank, alpha=cfg.alpha, name=name)
            self.parent = {k: v.to(device=device, dtype=self.lora_params[k].dtype) for k, v in tensors.items()}
            with torch.no_grad():
                for k, p in self.lora_params.items():
                    p.data.copy_(self.parent[k])
            self.log(f"policy starts from parent adapter {name}; the reference is base + parent (frozen)")
        if cfg.gradient_checkpointing:
            base.unet.enable_gradient_checkpointing()
        kto = cfg.objective == "kto"
        self.snapshot: SnapshotScan = scan(
            cfg.dataset,
            SnapshotOptions(
                keep_ties_for_metrics=cfg.keep_ties_for_metrics,
                absolute_winners=cfg.absolute_winners,
                exclude_flagged=cfg.exclude_flagged,
                heldout_fraction=cfg.heldout_fraction,
                max_pairs=cfg.max_pairs,
                include_ties=kto and cfg.kto_ties,
                include_both_bad=kto and cfg.kto_both_bad,
                seed=cfg.seed,
                heldout_max=cfg.heldout_max,
                probe_max=cfg.heldout_max,
                shuffle_buffer=cfg.shuffle_buffer,
            ),
        )
        if not self.snapshot.train_pairs:
            raise ValueError(f"no training pairs in the snapshot ({dict(self.snapshot.counts)})")
        self.log(f"snapshot: {dict(self.snapshot.counts)}")
        self.encoder = PairEncoder(base, cfg, device, self.weight_dtype, self.snapshot.base_dir, self.read_blob)
        self.heldout = self.snapshot.heldout

        world = acc.num_processes
        effective = cfg.learning_rate * world * cfg.batch_size * cfg.gradient_accumulation
        lr = effective if cfg.scale_lr else cfg.learning_rate
        self.log(
            f"effective learning rate = base {cfg.learning_rate:g} × world {world} × batch {cfg.batch_size} × "
            f"accumulation {cfg.gradient_accumulation} = {effective:g} (optimizer uses {lr:g}; scale_lr={cfg.scale_lr})"
        )
        self.optimizer, self.optimizer_name = make_optimizer(cfg.optimizer, self.params, lr, cfg.weight_decay, device)
        if cfg.optimizer == "adamw8bit" and self.optimizer_name != "adamw8bit":
            self.log("8-bit AdamW needs CUDA and bitsandbytes; using AdamW")
        warmup = max(0, cfg.warmup_steps)
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        self.unet, self.optimizer = acc.prepare(base.unet, self.optimizer)
        self.raw_unet = base.unet

    def reference(self):
        """The reference model: the parent's LoRA swapped in, or the LoRA disabled."""
        if self.parent is not None:
            return lora_weights_swapped(self.lora_params, self.parent)
        return adapter_disabled(self.raw_unet)

    # one micro-step -------------------------------------------------------------------------
    def _batch(self, pairs: list[PreferencePair], generator, *, sample_latents: bool, dropout: float, train: bool,
               winners_only: bool = False, independent_noise: bool = False) -> Batch:
        cfg = self.cfg
        flips = [bool(cfg.flip and torch.rand((), generator=generator) < 0.5) for _ in pairs] if train else [False] * len(pairs)
        dropped = [bool(dropout > 0 and torch.rand((), generator=generator) < dropout) for _ in pairs]
        captions = ["" if d else p.caption for p, d in zip(pairs, dropped)]
        w_mean, w_std, l_mean, l_std, size_ids = self.encoder.latent_dists(pairs, flips, generator if cfg.random_crop else None)
        if sample_latents:
            w = w_mean + w_std * torch.randn(w_mean.shape, generator=generator).to(w_mean.device)
            l = l_mean + l_std * torch.randn(l_mean.shape, generator=generator).to(l_mean.device)
        else:
            w, l = w_mean, l_mean
        images = 1 if winners_only else 2
        latents = (w if winners_only else torch.cat([w, l])) * self.encoder.scaling
        hidden, pooled = self.encoder.text(captions)
        if self.base.zeros_for_empty_prompt and any(dropped):  # SDXL's unconditional input: zeros
            keep = ~torch.tensor(dropped, device=hidden.device)
            hidden, pooled = hidden * keep[:, None, None].to(hidden.dtype), pooled * keep[:, None].to(pooled.dtype)
        added = None
        if self.base.family.is_sdxl:  # as diffusers' SDXL DPO script: the pair's ids and pooled embeds, per image
            added = {"text_embeds": pooled.to(self.weight_dtype).repeat(images, 1),
                     "time_ids": size_ids.to(self.weight_dtype).repeat(images, 1)}
        b = len(pairs)
        draws = b * images if independent_noise else b
        repeat = 1 if independent_noise else images
        noise = torch.randn((draws, *latents.shape[1:]), generator=generator).to(latents.device)
        steps = int(self.base.noise_scheduler.config.num_train_timesteps)
        t = torch.randint(0, steps, (draws,), generator=generator).to(latents.device)
        variance = None
        if self.space.needs_variance_noise:
            variance = torch.randn((draws, *latents.shape[1:]), generator=generator).to(latents.device).repeat(repeat, 1, 1, 1)
        desirable = torch.tensor([p.desirable[0] for p in pairs] + ([] if winners_only else [p.desirable[1] for p in pairs]))
        return Batch(latents, noise.repeat(repeat, 1, 1, 1), t.repeat(repeat), hidden.repeat(images, 1, 1), pooled,
                     variance, desirable.to(latents.device), winners_only, added)

    def _distances(self, batch: Batch, *, grad: bool, need_ref: bool = True, extra_latent: bool = False):
        acc = self.accelerator
        latents, noise, t, hidden, added = batch.latents, batch.noise, batch.timesteps, batch.hidden, batch.added
        noisy = self.base.noise_scheduler.add_noise(latents, noise, t).to(self.weight_dtype)
        state = self.space.prepare(latents, noise, noisy, t, hidden, batch.variance_noise, added_cond_kwargs=added)
        out = {}
        with torch.set_grad_enabled(grad), acc.autocast():
            pred = (self.unet if grad else self.raw_unet)(noisy, t, hidden, added_cond_kwargs=added).sample
            out["model"] = self.space.distance(pred, state, noisy, t, hidden)
        if need_ref:
            with torch.no_grad(), self.reference(), acc.autocast():
                ref_pred = self.raw_unet(noisy, t, hidden, added_cond_kwargs=added).sample
                out["ref"] = self.space.distance(ref_pred, state, noisy, t, hidden)
        if extra_latent and self.space.name != "latent":
            with torch.no_grad():
                target = self.latent_space.prepare(latents, noise, noisy, t, hidden)
                out["model_latent"] = self.latent_space.distance(pred.detach(), target, noisy, t, hidden)
                out["ref_latent"] = self.latent_space.distance(ref_pred, target, noisy, t, hidden)
        return out

    def _terms(self, dist_model, dist_ref, batch: Batch):
        """The objective's terms and the per-image distances (w, l, ref w, ref l; zeros where a pass
        was skipped: those only feed diagnostics the step does not report)."""
        cfg = self.cfg
        if batch.winners_only:
            mw = dist_model
            ml = torch.zeros_like(mw)
        else:
            mw, ml = dist_model.chunk(2)
        if dist_ref is None:
            rw, rl = torch.zeros_like(mw), torch.zeros_like(mw)
        else:
            rw, rl = (dist_ref, torch.zeros_like(mw)) if batch.winners_only else dist_ref.chunk(2)
        if cfg.objective == "kto":
            model, ref = torch.cat([mw, ml]), torch.cat([rw, rl])
            kl = None
            if self.accelerator.num_processes > 1:  # Diffusion-KTO all-reduces its reference point
                kl = self.accelerator.reduce((ref - model).mean().detach(), reduction="mean")
            terms = kto_loss(model, ref, batch.desirable, cfg.beta, kl=kl, desirable_weight=cfg.kto_desirable_weight,
                             undesirable_weight=cfg.kto_undesirable_weight)
        else:
            weights = rpo_weights(batch.pooled, batch.pooled, cfg.rpo_tau) if cfg.objective == "rpo" else None
            terms = preference_loss(cfg.objective, mw, ml, rw, rl, beta=cfg.beta, sft_weight=cfg.sft_weight,
                                    rpo_weight_matrix=weights, variant=cfg.variant)
        return terms, (mw, ml, rw, rl)

    def _passes(self) -> tuple[bool, bool]:
        """(needs the loser pass, needs the reference pass) of a training step."""
        objective = self.cfg.objective
        return objective != "sft", objective not in ("sft", "cpo")

    # held-out --------------------------------------------------------------------------------
    @torch.no_grad()
    def _probe(self, pairs: list[PreferencePair], seed_offset: int) -> dict:
        """Objective loss and implicit accuracies on ``pairs`` with fixed noise and timesteps."""
        g = torch.Generator().manual_seed(self.cfg.seed + seed_offset)
        insides, insides_latent, ties, losses, sizes = [], [], [], [], []
        chunk = self.cfg.batch_size if self.cfg.objective == "rpo" else 16  # rpo's loss depends on the batch
        for i in range(0, len(pairs), chunk):
            part = pairs[i : i + chunk]
            # The implicit reward is an expectation over timestep and noise: average each pair's
            # distances over `eval_draws` draws before taking the sign (one draw is mostly noise).
            draws = []
            for _ in range(max(1, self.cfg.eval_draws)):
                batch = self._batch(part, g, sample_latents=False, dropout=0.0, train=False)
                draws.append(self._distances(batch, grad=False, extra_latent=True))
            d = {k: torch.stack([draw[k] for draw in draws]).mean(0) for k in draws[0]}
            terms, (mw, ml, rw, rl) = self._terms(d["model"], d["ref"], batch)
            losses.append(float(terms.loss) * len(part))
            sizes.append(len(part))
            insides.append(dpo_inside(mw, ml, rw, rl, self.cfg.beta).float().cpu())
            if "model_latent" in d:
                mw, ml = d["model_latent"].chunk(2)
                rw, rl = d["ref_latent"].chunk(2)
                insides_latent.append(dpo_inside(mw, ml, rw, rl, self.cfg.beta).float().cpu())
            ties.extend(p.tie for p in part)
        tie = torch.tensor(ties, dtype=torch.bool)

        def acc_of(inside):
            inside = inside.clone()
            inside[tie] = 0.0  # a tie counts ½ whatever the model says
            return float(implicit_accuracy(inside))

        inside = torch.cat(insides)
        out = {"implicit_acc": acc_of(inside), "loss": sum(losses) / sum(sizes),
               "margin": float(inside[~tie].mean()) if (~tie).any() else 0.0}
        out["implicit_acc_latent"] = acc_of(torch.cat(insides_latent)) if insides_latent else out["implicit_acc"]
        return out

    def evaluate(self) -> dict:
        """Held-out pairs and a fixed probe of training pairs, with fixed noise (comparable across steps)."""
        out = {}
        if self.heldout:
            out.update({f"heldout_{k}": v for k, v in self._probe(self.heldout, 7_777_777).items()})
        probe = [p for p in self.snapshot.probe if p.kind == "preference"]
        if probe:
            out.update({f"probe_{k}": v for k, v in self._probe(probe, 5_555_555).items()})
        return out

    # checkpoints -----------------------------------------------------------------------------
    def _rank_states(self, generator) -> dict:
        """Every process's random streams (gathered: a collective, called on every rank)."""
        states = {"generator": generator.get_state(), "torch_rng": torch.get_rng_state()}
        if torch.cuda.is_available():
            states["cuda_rng"] = torch.cuda.get_rng_state()
        acc = self.accelerator
        if acc.num_processes == 1:
            return {k: v[None] for k, v in states.items()}
        return {k: acc.gather(v.to(acc.device)[None]).cpu() for k, v in states.items()}

    def _checkpoint_state(self, step, stream, rank_states, skipped) -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.cfg.fingerprint(),
            "world": self.accelerator.num_processes,
            "step": step,
            "lora": {k: v.detach() for k, v in self.lora_params.items()},
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "data": stream.state(),
            "rank_states": rank_states,
            "skipped_steps": skipped,
            "history": self.history,
            "start_eval": self.history_start_eval,
        }

    def save_checkpoint(self, step, stream, generator, skipped) -> None:
        if not self.cfg.checkpoint_path:
            return
        rank_states = self._rank_states(generator)
        if not self.accelerator.is_main_process:
            return
        path = Path(self.cfg.checkpoint_path)
        save_checkpoint(self._checkpoint_state(step, stream, rank_states, skipped), path)
        self.log(f"checkpoint at step {step} → {path}")
        if self.on_checkpoint:
            self.on_checkpoint(path, step)

    def _load_checkpoint(self):
        path = self.cfg.checkpoint_path
        if not path or not Path(path).exists():
            return None
        try:
            state = load_checkpoint(path)
        except Exception as err:  # not ours, or damaged: start over rather than trust it
            self.log(f"ignoring checkpoint {path}: {err}")
            return None
        fingerprint = json.loads(json.dumps(self.cfg.fingerprint()))
        if state.get("version") != CHECKPOINT_VERSION or state.get("fingerprint") != fingerprint:
            self.log(f"ignoring checkpoint {path}: it belongs to a different configuration")
            return None
        return state

    def _restore(self, state, generator) -> None:
        acc = self.accelerator
        with torch.no_grad():
            for k, p in self.lora_params.items():
                p.data.copy_(state["lora"][k].to(p.device, p.dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        rank = acc.process_index
        ranks = state["rank_states"]
        if state.get("world") == acc.num_processes:
            generator.set_state(ranks["generator"][rank].clone())
            torch.set_rng_state(ranks["torch_rng"][rank].clone())
            if "cuda_rng" in ranks and torch.cuda.is_available():
                torch.cuda.set_rng_state(ranks["cuda_rng"][rank].clone())
        else:  # another number of processes: fresh, distinct streams per rank (not bit-identical)
            generator.manual_seed(self.cfg.seed * 7919 + 17 + rank + 1_000_003 * state["step"])
            self.log(f"checkpoint was written by {state.get('world')} processes, this run has {acc.num_processes}: "
                     "random streams are reseeded")

    # the loop --------------------------------------------------------------------------------
    def _metrics_writer(self, resumed_step: int):
        path = self.cfg.metrics_path
        if not path or not self.accelerator.is_main_process:
            return None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keep = []
        if resumed_step and path.exists():  # drop lines past the checkpoint: they will be re-run
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resumed_step:
                        keep.append(line)
                except json.JSONDecodeError:
                    break
        path.write_text("".join(line + "\n" for line in keep))
        return path.open("a")

    def _record(self, record: dict) -> None:
        """One metrics line: to ``metrics.jsonl`` and to the next progress message."""
        if self.metrics_file:
            self.metrics_file.write(json.dumps(record) + "\n")
            self.metrics_file.flush()
        self.pending_metrics.append({k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and math.isfinite(v)})

    def _progress(self, step: int, phase: str, rate: float | None) -> None:
        if not self.accelerator.is_main_process or self.on_progress is None:
            self.pending_metrics = []
            return
        eta = (self.cfg.steps - step) / rate if rate else None
        self.on_progress({
            "step": step, "totalSteps": self.cfg.steps, "stepsPerSecond": rate, "etaSeconds": eta, "phase": phase,
            "metrics": self.pending_metrics[-1000:],
        })
        self.pending_metrics = []

    def _step_values(self, terms, d, mw, ml, rw, rl) -> dict:
        """What a training step reports: only what its passes computed."""
        need_loser, need_ref = self._passes()
        values = {"loss": terms.loss.detach(), "model_mse": d["model"].detach().mean(), "model_mse_w": mw.detach().mean()}
        if need_loser:
            values["model_mse_l"] = ml.detach().mean()
        if need_ref:
            values.update({
                "implicit_acc": implicit_accuracy(terms.inside),
                "reward_w": terms.reward_w.detach().mean(), "reward_l": terms.reward_l.detach().mean(),
                "margin": (terms.reward_w - terms.reward_l).detach().mean(),
                "ref_mse": d["ref"].mean(), "ref_mse_w": rw.mean(), "ref_mse_l": rl.mean(),
            })
        return values

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.accelerator
        self._setup()
        world, rank = acc.num_processes, acc.process_index
        generator = torch.Generator().manual_seed(cfg.seed * 7919 + 17 + rank)
        step, skipped, resumed = 0, 0, 0
        self.history: list[dict] = []
        self.history_start_eval: dict = {}
        self.pending_metrics: list[dict] = []
        state = self._load_checkpoint()
        stream_state = {}
        if state is not None:
            self._restore(state, generator)
            stream_state = state["data"]
            step = resumed = state["step"]
            skipped = state["skipped_steps"]
            self.history = state.get("history", [])
            self.history_start_eval = state.get("start_eval", {})
            self.log(f"resumed from checkpoint at step {step}")
        stream = PairStream(self.snapshot, cfg.seed, **stream_state)
        self.metrics_file = self._metrics_writer(resumed)
        eval_every = cfg.eval_every or max(1, cfg.steps // 10)  # < 0: no evaluations at all
        progress_every = cfg.progress_every or max(1, cfg.steps // 20)
        if step == 0 and eval_every > 0:
            first = self.evaluate()
            self.history_start_eval = first
            if first:
                self._record({"step": 0, **first})
                self._progress(0, "evaluation", None)
        bar = tqdm(total=cfg.steps, initial=step, desc=f"{cfg.objective}/{cfg.space}", unit="step",
                   disable=(not acc.is_main_process) or (cfg.progress is False) or (cfg.progress is None and not sys.stderr.isatty()))
        t_start, last_log = time.time(), time.time()
        need_loser, need_ref = self._passes()
        self.unet.train()
        try:
            while step < cfg.steps:
                sums: dict[str, float] = {}
                for micro in range(cfg.gradient_accumulation):
                    global_pairs = stream.take(cfg.batch_size * world)
                    pairs = global_pairs[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]
                    batch = self._batch(pairs, generator, sample_latents=True, dropout=cfg.caption_dropout, train=True,
                                        winners_only=not need_loser, independent_noise=cfg.objective == "kto")
                    sync = micro == cfg.gradient_accumulation - 1
                    ctx = acc.no_sync(self.unet) if not sync else _null()
                    with ctx:
                        d = self._distances(batch, grad=True, need_ref=need_ref)
                        terms, (mw, ml, rw, rl) = self._terms(d["model"], d.get("ref"), batch)
                        acc.backward(terms.loss / cfg.gradient_accumulation)
                    for k, v in self._step_values(terms, d, mw, ml, rw, rl).items():
                        sums[k] = sums.get(k, 0.0) + float(v) / cfg.gradient_accumulation
                grad_norm = acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
                grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
                finite = math.isfinite(sums["loss"]) and math.isfinite(grad_norm)
                if acc.scaler is not None:  # fp16: the grad scaler skips non-finite steps and lowers its scale
                    self.optimizer.step()
                    finite = not acc.optimizer_step_was_skipped
                    if not finite:
                        skipped += 1
                        self.log(f"step {step + 1}: fp16 overflow, update skipped ({skipped} so far)")
                elif finite:
                    self.optimizer.step()
                else:
                    skipped += 1
                    self.log(f"step {step + 1}: non-finite loss/gradient, update skipped ({skipped} so far)")
                self.optimizer.zero_grad(set_to_none=True)
                lr = self.lr_scheduler.get_last_lr()[0]
                self.lr_scheduler.step()
                step += 1
                if world > 1:
                    keys = sorted(sums)
                    packed = acc.gather(torch.tensor([sums[k] for k in keys], device=acc.device)[None]).mean(0)
                    sums = dict(zip(keys, packed.tolist()))
                record = {"step": step, **sums, "grad_norm": grad_norm, "lr": lr, "skipped_steps": skipped}
                evaluated = eval_every > 0 and (step % eval_every == 0 or step == cfg.steps)
                if evaluated:
                    record.update(self.evaluate())
                self.history.append(record)
                self._record(record)
                rate = (step - resumed) / max(1e-9, time.time() - t_start)
                if step == cfg.steps or evaluated or step % progress_every == 0:
                    self._progress(step, "finished" if step == cfg.steps else ("evaluation" if evaluated else "training"), rate)
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss']:.4f}")
                if bar.disable and time.time() - last_log > 30:
                    eta = (cfg.steps - step) / rate if rate > 0 else float("inf")
                    self.log(f"step {step}/{cfg.steps} loss {sums['loss']:.4f} {rate:.2f} step/s ETA {eta:.0f}s")
                    last_log = time.time()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                    self.save_checkpoint(step, stream, generator, skipped)
                if cfg.stop_after is not None and step >= cfg.stop_after and step < cfg.steps:
                    self.save_checkpoint(step, stream, generator, skipped)
                    raise Interrupted(step)
        except Interrupted:
            bar.close()
            if self.metrics_file:
                self.metrics_file.close()
            # every rank stops at the same step: none leaves while another is still in a collective
            acc.wait_for_everyone()
            return TrainResult(None, step, {}, completed=False, resumed_from=resumed)
        bar.close()
        if self.metrics_file:
            self.metrics_file.close()
        elapsed = time.time() - t_start
        acc.wait_for_everyone()
        adapter_dir = None
        if acc.is_main_process:
            adapter_dir = Path(cfg.output_dir)
            save_diffusers_lora(self.raw_unet, adapter_dir, self.lora_config, self.base.family)
        summary = self.summary(elapsed, step - resumed, skipped)
        return TrainResult(adapter_dir, step, summary, completed=True, resumed_from=resumed)

    def summary(self, elapsed: float, steps_run: int, skipped: int) -> dict:
        tail = self.history[-10:]
        out = {}
        for k in ("loss", "implicit_acc", "margin", "model_mse", "ref_mse"):
            vals = [r[k] for r in tail if k in r]
            if vals:
                out[f"final_{k}"] = sum(vals) / len(vals)
        if self.history:
            out["first_loss"] = self.history[0]["loss"]
        evals = [r for r in self.history if "heldout_implicit_acc" in r or "probe_implicit_acc" in r]
        if evals:
            for k, v in evals[-1].items():
                if k.startswith(("heldout_", "probe_")):
                    out[k] = v
        first_eval = self.history_start_eval
        if first_eval:
            out.update({f"initial_{k}": v for k, v in first_eval.items()})
        out["steps"] = float(len(self.history))
        out["skipped_steps"] = float(skipped)
        out["train_pairs"] = float(self.snapshot.train_pairs)
        out["heldout_pairs"] = float(len(self.heldout))
        out["train_seconds"] = float(elapsed)
        if elapsed > 0 and steps_run:
            out["steps_per_second"] = steps_run / elapsed
        return out


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def train(cfg: TrainConfig, **kwargs) -> TrainResult:
    return PreferenceTrainer(cfg, **kwargs).train()
