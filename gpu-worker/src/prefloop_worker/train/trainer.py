"""The preference trainer: one loop for every objective × space, LoRA out.

One optimisation step = ``gradient_accumulation`` micro-steps of ``batch_size`` pairs per process.
Each micro-step: winner and loser latents get the same noise and timestep; the UNet with its LoRA
(policy) and with the LoRA disabled (reference, no grad, same module) predict on both; the space
turns predictions into per-image distances; the objective turns distances into a loss.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.images import load_image, paired_views
from ..data.snapshot import PreferencePair, PreferenceSnapshot, SnapshotOptions, read_snapshot
from ..logs import stderr_log
from .config import TrainConfig
from .model import BaseModel, adapter_disabled, add_lora, load_base_model, load_lora_state, lora_parameters, lora_state_dict, save_diffusers_lora
from .objectives import dpo_inside, implicit_accuracy, preference_loss, rpo_weights
from .spaces import LatentSpace, make_space

CHECKPOINT_VERSION = 1
METRIC_KEYS = ("loss", "implicit_acc", "reward_w", "reward_l", "margin", "model_mse", "ref_mse",
               "model_mse_w", "model_mse_l", "ref_mse_w", "ref_mse_l")


@dataclass
class TrainResult:
    adapter_dir: Path | None
    steps: int
    metrics: dict = field(default_factory=dict)
    completed: bool = True
    resumed_from: int = 0


class Interrupted(Exception):
    pass


def _atomic_torch_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class PairEncoder:
    """Images → VAE latent distributions and captions → text embeddings, memoised in memory
    (and on disk under ``cache_dir``) when the data fits."""

    def __init__(self, base: BaseModel, cfg: TrainConfig, snapshot: PreferenceSnapshot, device, dtype, read_blob=None):
        self.base, self.cfg, self.device, self.dtype = base, cfg, device, dtype
        self.snapshot, self.read_blob = snapshot, read_blob
        self.resolution = cfg.resolution or base.resolution
        self.scaling = float(base.vae.config.scaling_factor)
        self.latent_cache: dict[tuple[int, int, bool], tuple[torch.Tensor, torch.Tensor]] = {}
        self.text_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.cache_latents = not cfg.random_crop and len(snapshot.train) <= cfg.latent_cache_max

    # text -----------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode_text(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.base.tokenizer
        ids = tok(captions, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
        out = self.base.text_encoder(ids.to(self.device))
        return out[0].to(self.dtype), out[1].float()

    def text(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = sorted({c for c in captions if c not in self.text_cache})
        for i in range(0, len(missing), 64):
            chunk = missing[i : i + 64]
            hidden, pooled = self._encode_text(chunk)
            for j, caption in enumerate(chunk):
                self.text_cache[caption] = (hidden[j], pooled[j])
        hidden = torch.stack([self.text_cache[c][0] for c in captions])
        pooled = torch.stack([self.text_cache[c][1] for c in captions])
        return hidden, pooled

    # images ---------------------------------------------------------------------------------
    @torch.no_grad()
    def _encode_pixels(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dist = self.base.vae.encode(pixels.to(self.device, self.dtype)).latent_dist
        return dist.mean.float(), dist.std.float()

    def _views(self, pair: PreferencePair, flip: bool, generator=None):
        w = load_image(pair.winner, self.snapshot.base_dir, self.read_blob)
        l = load_image(pair.loser, self.snapshot.base_dir, self.read_blob)
        return paired_views(w, l, self.resolution, random_crop=self.cfg.random_crop, flip=flip, generator=generator)

    def latent_dists(self, split: str, pairs: list[PreferencePair], indices: list[int], flips: list[bool], generator=None):
        """(mean, std) of winner and loser latents: 4 tensors ``[B, C, h, w]``."""
        keys = [(0 if split == "train" else 1, i, f) for i, f in zip(indices, flips)]
        todo = [k for k in dict.fromkeys(keys) if k not in self.latent_cache] if self.cache_latents else keys
        if todo:
            views = [self._views(pairs[i], f, generator) for _, i, f in todo]
            pixels = torch.stack([v[0] for v in views] + [v[1] for v in views])
            mean, std = self._encode_pixels(pixels)
            n = len(todo)
            fresh = {k: ((mean[j], std[j]), (mean[n + j], std[n + j])) for j, k in enumerate(todo)}
            if self.cache_latents:
                self.latent_cache.update(fresh)
            source = {**self.latent_cache, **fresh} if self.cache_latents else fresh
        else:
            source = self.latent_cache
        w_mean = torch.stack([source[k][0][0] for k in keys])
        w_std = torch.stack([source[k][0][1] for k in keys])
        l_mean = torch.stack([source[k][1][0] for k in keys])
        l_std = torch.stack([source[k][1][1] for k in keys])
        return w_mean, w_std, l_mean, l_std

    def warm(self, log) -> None:
        """Encode every caption and (when cached) every pair once, up front; load/save a disk cache."""
        path = self._disk_cache_path()
        if path is not None and path.exists():
            blob = torch.load(path, map_location="cpu", weights_only=True)
            self.latent_cache = {tuple(k): v for k, v in zip(blob["keys"], blob["values"])}
            self.latent_cache = {(int(a), int(b), bool(c)): v for (a, b, c), v in self.latent_cache.items()}
            self.text_cache = dict(zip(blob["captions"], blob["text"]))
            log(f"loaded latent/text cache {path}")
            return
        t0 = time.time()
        chunk = max(1, self.cfg.batch_size)  # no bigger activations than a training step's
        captions = sorted({p.caption for p in self.snapshot.train + self.snapshot.heldout} | {""})
        for i in range(0, len(captions), chunk):
            self.text(captions[i : i + chunk])
        if self.cache_latents:
            flips = [False, True] if self.cfg.flip else [False]
            for split, pairs in (("train", self.snapshot.train), ("heldout", self.snapshot.heldout[: self.cfg.heldout_max])):
                for f in flips:
                    for i in range(0, len(pairs), chunk):
                        idx = list(range(i, min(i + chunk, len(pairs))))
                        self.latent_dists(split, pairs, idx, [f] * len(idx))
        log(f"encoded {len(self.text_cache)} captions and {len(self.latent_cache)} pairs in {time.time() - t0:.1f}s")
        if path is not None:
            keys = list(self.latent_cache)
            _atomic_torch_save(
                {"keys": [list(k) for k in keys], "values": [self.latent_cache[k] for k in keys],
                 "captions": list(self.text_cache), "text": list(self.text_cache.values())},
                path,
            )

    def _disk_cache_path(self) -> Path | None:
        if not self.cfg.cache_dir or not self.cache_latents:
            return None
        key = json.dumps([self.cfg.base_model_id, self.cfg.dataset_snapshot_id, self.resolution, self.cfg.flip,
                          self.cfg.heldout_max, self.cfg.heldout_fraction, self.cfg.absolute_winners,
                          self.cfg.keep_ties_for_metrics, self.cfg.exclude_flagged, self.cfg.max_pairs, str(self.dtype)])
        return Path(self.cfg.cache_dir) / f"encoded-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"


class DataCursor:
    """Deterministic, resumable order: a fresh seeded permutation per epoch, read in order."""

    def __init__(self, n: int, seed: int, epoch: int = 0, position: int = 0):
        self.n, self.seed, self.epoch, self.position = n, seed, epoch, position
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def take(self, k: int) -> list[int]:
        out = []
        while len(out) < k:
            if self.position >= self.n:
                self.epoch += 1
                self.position = 0
                self._perm = self._permutation(self.epoch)
            take = min(k - len(out), self.n - self.position)
            out.extend(self._perm[self.position : self.position + take])
            self.position += take
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}


class PreferenceTrainer:
    def __init__(self, cfg: TrainConfig, *, read_blob=None, log=None, on_checkpoint=None, accelerator=None):
        from accelerate import Accelerator

        self.cfg = cfg
        self.read_blob = read_blob
        self.on_checkpoint = on_checkpoint
        if accelerator is None:
            mp = cfg.mixed_precision
            if mp == "auto":
                mp = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
            accelerator = Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())
        self.accelerator = accelerator
        self._log = log or stderr_log()

    def log(self, msg: str) -> None:
        if self.accelerator.is_main_process:
            self._log(f"[train] {msg}")

    # setup ------------------------------------------------------------------------------------
    def _setup(self):
        cfg, acc = self.cfg, self.accelerator
        device = acc.device
        self.weight_dtype = torch.bfloat16 if acc.mixed_precision == "bf16" else torch.float32
        base = load_base_model(cfg.base_model)
        base.text_encoder.to(device, self.weight_dtype)
        base.vae.to(device, self.weight_dtype)
        base.unet.to(device, self.weight_dtype)
        self.base = base
        self.space = make_space(cfg.space, base.noise_scheduler, base.unet, cfg.ncp_sampler_steps).to(device)
        self.latent_space = LatentSpace(base.noise_scheduler).to(device)
        self.lora_config = add_lora(base.unet, cfg.rank, cfg.alpha, init_seed=cfg.seed)
        self.params = lora_parameters(base.unet)
        self.snapshot = read_snapshot(
            cfg.dataset,
            SnapshotOptions(
                keep_ties_for_metrics=cfg.keep_ties_for_metrics,
                absolute_winners=cfg.absolute_winners,
                exclude_flagged=cfg.exclude_flagged,
                heldout_fraction=cfg.heldout_fraction,
                max_pairs=cfg.max_pairs,
            ),
        )
        if not self.snapshot.train:
            raise ValueError(f"no training pairs in the snapshot ({dict(self.snapshot.counts)})")
        self.log(f"snapshot: {dict(self.snapshot.counts)}")
        self.encoder = PairEncoder(base, cfg, self.snapshot, device, self.weight_dtype, self.read_blob)
        self.encoder.warm(self.log)
        self.heldout = self.snapshot.heldout[: cfg.heldout_max]

        world = acc.num_processes
        effective = cfg.learning_rate * world * cfg.batch_size * cfg.gradient_accumulation
        lr = effective if cfg.scale_lr else cfg.learning_rate
        self.log(
            f"effective learning rate = base {cfg.learning_rate:g} × world {world} × batch {cfg.batch_size} × "
            f"accumulation {cfg.gradient_accumulation} = {effective:g} (optimizer uses {lr:g}; scale_lr={cfg.scale_lr})"
        )
        self.optimizer = torch.optim.AdamW(self.params, lr=lr, weight_decay=cfg.weight_decay)
        warmup = max(0, cfg.warmup_steps)
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        self.unet, self.optimizer = acc.prepare(base.unet, self.optimizer)
        self.raw_unet = base.unet

    # one micro-step -------------------------------------------------------------------------
    def _batch(self, split: str, pairs, indices, generator, *, sample_latents: bool, dropout: float):
        cfg = self.cfg
        flips = [bool(cfg.flip and torch.rand((), generator=generator) < 0.5) for _ in indices] if split == "train" else [False] * len(indices)
        captions = [pairs[i].caption for i in indices]
        if dropout > 0:
            captions = ["" if torch.rand((), generator=generator) < dropout else c for c in captions]
        w_mean, w_std, l_mean, l_std = self.encoder.latent_dists(split, pairs, indices, flips, generator if cfg.random_crop else None)
        if sample_latents:
            w = w_mean + w_std * torch.randn(w_mean.shape, generator=generator).to(w_mean.device)
            l = l_mean + l_std * torch.randn(l_mean.shape, generator=generator).to(l_mean.device)
        else:
            w, l = w_mean, l_mean
        latents = torch.cat([w, l]) * self.encoder.scaling
        hidden, pooled = self.encoder.text(captions)
        b = len(indices)
        noise = torch.randn((b, *latents.shape[1:]), generator=generator).to(latents.device)
        steps = int(self.base.noise_scheduler.config.num_train_timesteps)
        t = torch.randint(0, steps, (b,), generator=generator).to(latents.device)
        return latents, noise.repeat(2, 1, 1, 1), t.repeat(2), hidden.repeat(2, 1, 1), pooled

    def _distances(self, latents, noise, t, hidden, *, grad: bool, extra_latent: bool = False):
        acc = self.accelerator
        noisy = self.base.noise_scheduler.add_noise(latents, noise, t).to(self.weight_dtype)
        state = self.space.prepare(latents, noise, noisy, t, hidden)
        out = {}
        with torch.set_grad_enabled(grad), acc.autocast():
            pred = (self.unet if grad else self.raw_unet)(noisy, t, hidden).sample
            out["model"] = self.space.distance(pred, state, noisy, t, hidden)
        with torch.no_grad(), adapter_disabled(self.raw_unet), acc.autocast():
            ref_pred = self.raw_unet(noisy, t, hidden).sample
            out["ref"] = self.space.distance(ref_pred, state, noisy, t, hidden)
        if extra_latent and self.space.name != "latent":
            with torch.no_grad():
                target = self.latent_space.prepare(latents, noise, noisy, t, hidden)
                out["model_latent"] = self.latent_space.distance(pred.detach(), target, noisy, t, hidden)
                out["ref_latent"] = self.latent_space.distance(ref_pred, target, noisy, t, hidden)
        return out

    def _terms(self, dist_model, dist_ref, pooled):
        cfg = self.cfg
        mw, ml = dist_model.chunk(2)
        rw, rl = dist_ref.chunk(2)
        weights = rpo_weights(pooled, pooled, cfg.rpo_tau) if cfg.objective == "rpo" else None
        terms = preference_loss(cfg.objective, mw, ml, rw, rl, beta=cfg.beta, sft_weight=cfg.sft_weight, rpo_weight_matrix=weights)
        return terms, (mw, ml, rw, rl)

    # held-out --------------------------------------------------------------------------------
    @torch.no_grad()
    def _probe(self, split: str, pairs, seed_offset: int, indices: list[int] | None = None) -> dict:
        """Objective loss and implicit accuracies on ``pairs`` with fixed noise and timesteps."""
        g = torch.Generator().manual_seed(self.cfg.seed + seed_offset)
        insides, insides_latent, ties, losses, sizes = [], [], [], [], []
        indices = list(range(len(pairs))) if indices is None else indices
        chunk = self.cfg.batch_size if self.cfg.objective == "rpo" else 16  # rpo's loss depends on the batch
        for i in range(0, len(indices), chunk):
            idx = indices[i : i + chunk]
            # The implicit reward is an expectation over timestep and noise: average each pair's
            # distances over `eval_draws` draws before taking the sign (one draw is mostly noise).
            draws = []
            for _ in range(max(1, self.cfg.eval_draws)):
                latents, noise, t, hidden, pooled = self._batch(split, pairs, idx, g, sample_latents=False, dropout=0.0)
                draws.append(self._distances(latents, noise, t, hidden, grad=False, extra_latent=True))
            d = {k: torch.stack([draw[k] for draw in draws]).mean(0) for k in draws[0]}
            terms, _ = self._terms(d["model"], d["ref"], pooled)
            losses.append(float(terms.loss) * len(idx))
            sizes.append(len(idx))
            insides.append(terms.inside.float().cpu())
            if "model_latent" in d:
                mw, ml = d["model_latent"].chunk(2)
                rw, rl = d["ref_latent"].chunk(2)
                insides_latent.append(dpo_inside(mw, ml, rw, rl, self.cfg.beta).float().cpu())
            ties.extend(pairs[j].tie for j in idx)
        tie = torch.tensor(ties)

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
            out.update({f"heldout_{k}": v for k, v in self._probe("heldout", self.heldout, 7_777_777).items()})
        probe = list(range(min(len(self.snapshot.train), self.cfg.heldout_max)))
        if probe:
            out.update({f"probe_{k}": v for k, v in self._probe("train", self.snapshot.train, 5_555_555, probe).items()})
        return out

    # checkpoints -----------------------------------------------------------------------------
    def _checkpoint_state(self, step, cursor, generator, skipped) -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.cfg.fingerprint(),
            "step": step,
            "lora": {k: v.cpu() for k, v in lora_state_dict(self.raw_unet).items()},
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "data": cursor.state(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "skipped_steps": skipped,
            "history": self.history,
            "start_eval": self.history_start_eval,
        }

    def save_checkpoint(self, step, cursor, generator, skipped) -> None:
        if not self.cfg.checkpoint_path or not self.accelerator.is_main_process:
            return
        path = Path(self.cfg.checkpoint_path)
        _atomic_torch_save(self._checkpoint_state(step, cursor, generator, skipped), path)
        self.log(f"checkpoint at step {step} → {path}")
        if self.on_checkpoint:
            self.on_checkpoint(path, step)

    def _load_checkpoint(self):
        path = self.cfg.checkpoint_path
        if not path or not Path(path).exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") != self.cfg.fingerprint():
            self.log(f"ignoring checkpoint {path}: it belongs to a different configuration")
            return None
        return state

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

    def train(self) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, acc = self.cfg, self.accelerator
        self._setup()
        world, rank = acc.num_processes, acc.process_index
        cursor = DataCursor(len(self.snapshot.train), cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed * 7919 + 17 + rank)
        step, skipped, resumed = 0, 0, 0
        self.history: list[dict] = []
        self.history_start_eval: dict = {}
        state = self._load_checkpoint()
        if state is not None:
            load_lora_state(self.raw_unet, {k: v.to(acc.device) for k, v in state["lora"].items()})
            self.optimizer.load_state_dict(state["optimizer"])
            self.lr_scheduler.load_state_dict(state["lr_scheduler"])
            cursor = DataCursor(len(self.snapshot.train), cfg.seed, **state["data"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if state.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            step = resumed = state["step"]
            skipped = state["skipped_steps"]
            self.history = state.get("history", [])
            self.history_start_eval = state.get("start_eval", {})
            self.log(f"resumed from checkpoint at step {step}")
        metrics_file = self._metrics_writer(resumed)
        eval_every = cfg.eval_every or max(1, cfg.steps // 10)  # < 0: no evaluations at all
        if step == 0 and eval_every > 0:
            first = self.evaluate()
            self.history_start_eval = first
            if metrics_file and first:
                metrics_file.write(json.dumps({"step": 0, **first}) + "\n")
                metrics_file.flush()
        bar = tqdm(total=cfg.steps, initial=step, desc=f"{cfg.objective}/{cfg.space}", unit="step",
                   disable=(not acc.is_main_process) or (cfg.progress is False) or (cfg.progress is None and not sys.stderr.isatty()))
        t_start, last_log = time.time(), time.time()
        self.unet.train()
        try:
            while step < cfg.steps:
                sums = {k: 0.0 for k in METRIC_KEYS}
                for micro in range(cfg.gradient_accumulation):
                    global_idx = cursor.take(cfg.batch_size * world)
                    idx = global_idx[rank * cfg.batch_size : (rank + 1) * cfg.batch_size]
                    latents, noise, t, hidden, pooled = self._batch("train", self.snapshot.train, idx, generator,
                                                                     sample_latents=True, dropout=cfg.caption_dropout)
                    sync = micro == cfg.gradient_accumulation - 1
                    ctx = acc.no_sync(self.unet) if not sync else _null()
                    with ctx:
                        d = self._distances(latents, noise, t, hidden, grad=True)
                        terms, (mw, ml, rw, rl) = self._terms(d["model"], d["ref"], pooled)
                        acc.backward(terms.loss / cfg.gradient_accumulation)
                    values = {
                        "loss": terms.loss.detach(), "implicit_acc": implicit_accuracy(terms.inside),
                        "reward_w": terms.reward_w.detach().mean(), "reward_l": terms.reward_l.detach().mean(),
                        "margin": (terms.reward_w - terms.reward_l).detach().mean(),
                        "model_mse": d["model"].detach().mean(), "ref_mse": d["ref"].mean(),
                        "model_mse_w": mw.detach().mean(), "model_mse_l": ml.detach().mean(),
                        "ref_mse_w": rw.mean(), "ref_mse_l": rl.mean(),
                    }
                    for k, v in values.items():
                        sums[k] += float(v) / cfg.gradient_accumulation
                grad_norm = acc.clip_grad_norm_(self.params, cfg.max_grad_norm)
                grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
                if math.isfinite(sums["loss"]) and math.isfinite(grad_norm):
                    self.optimizer.step()
                else:
                    skipped += 1
                    self.log(f"step {step + 1}: non-finite loss/gradient, update skipped ({skipped} so far)")
                self.optimizer.zero_grad(set_to_none=True)
                lr = self.lr_scheduler.get_last_lr()[0]
                self.lr_scheduler.step()
                step += 1
                if world > 1:
                    packed = torch.tensor([sums[k] for k in METRIC_KEYS], device=acc.device)
                    packed = acc.gather(packed[None]).mean(0)
                    sums = dict(zip(METRIC_KEYS, packed.tolist()))
                record = {"step": step, **sums, "grad_norm": grad_norm, "lr": lr, "skipped_steps": skipped}
                if eval_every > 0 and (step % eval_every == 0 or step == cfg.steps):
                    record.update(self.evaluate())
                self.history.append(record)
                if metrics_file:
                    metrics_file.write(json.dumps(record) + "\n")
                    metrics_file.flush()
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss']:.4f}", acc=f"{sums['implicit_acc']:.2f}")
                if bar.disable and time.time() - last_log > 30:
                    rate = (step - resumed) / (time.time() - t_start)
                    eta = (cfg.steps - step) / rate if rate > 0 else float("inf")
                    self.log(f"step {step}/{cfg.steps} loss {sums['loss']:.4f} acc {sums['implicit_acc']:.2f} {rate:.2f} step/s ETA {eta:.0f}s")
                    last_log = time.time()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                    self.save_checkpoint(step, cursor, generator, skipped)
                if cfg.stop_after is not None and step >= cfg.stop_after and step < cfg.steps:
                    self.save_checkpoint(step, cursor, generator, skipped)
                    raise Interrupted(step)
        except Interrupted:
            bar.close()
            if metrics_file:
                metrics_file.close()
            return TrainResult(None, step, {}, completed=False, resumed_from=resumed)
        bar.close()
        if metrics_file:
            metrics_file.close()
        elapsed = time.time() - t_start
        acc.wait_for_everyone()
        adapter_dir = None
        if acc.is_main_process:
            adapter_dir = Path(cfg.output_dir)
            save_diffusers_lora(self.raw_unet, adapter_dir, self.lora_config)
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
        evals = [r for r in self.history if "heldout_implicit_acc" in r]
        if evals:
            for k, v in evals[-1].items():
                if k.startswith(("heldout_", "probe_")):
                    out[k] = v
        first_eval = self.history_start_eval
        if first_eval:
            out.update({f"initial_{k}": v for k, v in first_eval.items()})
        out["steps"] = float(len(self.history))
        out["skipped_steps"] = float(skipped)
        out["train_pairs"] = float(len(self.snapshot.train))
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
