"""diffusers side of the inference benchmark. bench/inference.ts starts it and drives it over
stdin/stdout (one JSON object per line) so that Node and diffusers pairs alternate and share the
machine's background load.

Work per request: one pair of images (one prompt, two seeds) through the model's pipeline
(StableDiffusionPipeline or StableDiffusionXLPipeline, from model_index.json) on the CPU, the pair
batched (a list of two generators), classifier-free guidance, DDIM. No negative prompt: "" encoded
for SD, zeros for SDXL (force_zeros_for_empty_prompt), as the Node pipeline does.
`--make-adapters DIR` first writes two random LoRA adapters for the model's UNet (peft; rank 4 /
alpha 8 and rank 2 / alpha 2) into DIR/adapter_a and DIR/adapter_b when they are not there.
Commands: {"op": "pair", "prompt", "seeds": [a, b], "steps", "guidance", "size", "adapter": name|null}
          {"op": "load_adapter", "name", "path"}   {"op": "threads", "threads"}   {"op": "stats"}   {"op": "quit"}
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--make-adapters")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from diffusers import DDIMScheduler, DiffusionPipeline
    from diffusers.utils import logging as dlogging

    dlogging.set_verbosity_error()
    if args.make_adapters:
        make_adapters(Path(args.model), Path(args.make_adapters))
    started = time.perf_counter()
    sdxl = "text_encoder_2" in json.loads((Path(args.model) / "model_index.json").read_text())
    extra = {"add_watermarker": False} if sdxl else {"safety_checker": None}
    pipe = DiffusionPipeline.from_pretrained(args.model, **extra)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    reply({"ready": True, "load_ms": (time.perf_counter() - started) * 1000, "torch": torch.__version__, "threads": args.threads})
    active: str | None = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "quit":
            break
        if op == "threads":
            torch.set_num_threads(cmd["threads"])
            reply({"ok": True})
        elif op == "stats":
            reply({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
        elif op == "load_adapter":
            pipe.load_lora_weights(cmd["path"], adapter_name=cmd["name"])
            pipe.disable_lora()
            reply({"ok": True})
        elif op == "pair":
            t = time.perf_counter()
            adapter = cmd.get("adapter")
            if adapter != active:
                if adapter is None:
                    pipe.disable_lora()
                else:
                    pipe.enable_lora()
                    pipe.set_adapters([adapter])
                active = adapter
            switch_ms = (time.perf_counter() - t) * 1000
            gens = [torch.Generator().manual_seed(s) for s in cmd["seeds"]]
            with torch.inference_mode():
                pipe(
                    prompt=[cmd["prompt"]] * 2,
                    negative_prompt=None if sdxl else [""] * 2,
                    num_inference_steps=cmd["steps"],
                    guidance_scale=cmd["guidance"],
                    height=cmd["size"],
                    width=cmd["size"],
                    generator=gens,
                    output_type="np",
                )
            reply({"ms": (time.perf_counter() - t) * 1000, "switch_ms": switch_ms})


def make_adapters(model: Path, out: Path) -> None:
    import diffusers
    from diffusers import UNet2DConditionModel

    from prefloop_worker.golden.make_golden import random_adapter

    index = json.loads((model / "model_index.json").read_text())
    saver = getattr(diffusers, index["_class_name"])
    for name, rank, alpha, seed in (("adapter_a", 4, 8, 5), ("adapter_b", 2, 2, 6)):
        folder = out / name
        if (folder / "pytorch_lora_weights.safetensors").exists():
            continue
        unet = UNet2DConditionModel.from_pretrained(model / "unet").eval()
        config, state = random_adapter(unet, rank, alpha, seed)
        folder.mkdir(parents=True, exist_ok=True)
        saver.save_lora_weights(folder, unet_lora_layers=state, unet_lora_adapter_metadata=config.to_dict())


def reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
