"""Writes the "Inference" section of BENCHMARKS.md from bench/results/inference.json (SD) and,
when present, bench/results/inference-sdxl.json (the SDXL row).

    npx tsx bench/inference.ts && npx tsx bench/inference.ts --family sdxl && python3 bench/inference_report.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section(r: dict) -> str:
    n, d, a = r["node"], r["diffusers"], r["adapterSwitch"]
    cal = r["threads"]["calibrationPairMs"]
    fmt = lambda m: ", ".join(f"{k} thread{'s' if k != '1' else ''} {v:.0f} ms" for k, v in m.items())  # noqa: E731
    ratio = r["ratioImagesPerSecond"]
    lat_ratio = d["pairLatencyMs"]["p50"] / n["pairLatencyMs"]["p50"]
    return f"""## Inference

Node pipeline (`functions/src/inference`: onnxruntime-node in a worker thread; schedulers, noise
and tokenizer in TypeScript) vs diffusers `StableDiffusionPipeline` (PyTorch CPU), in one run on
the same machine: same model, prompts, seeds, DDIM {r['work']['steps']} steps, guidance {r['work']['guidance']:g}, {r['model']['size']}x{r['model']['size']}. Each request is
a pair of images (two seeds) batched through the UNet with classifier-free guidance (UNet batch 4),
for both. Pairs alternate between the two sides, so both see the same background load. Medians.

Command: `npx tsx bench/inference.ts` then `python3 bench/inference_report.py` (needs `.venv`).
Without `models/tiny-shapes{{,-onnx}}` it uses a random-weight model of the tiny model's
architecture: `.venv/bin/python scripts/golden-inference.py --random-model test-artifacts/random-sd`
(speed depends on the architecture, not the weights). Results: `bench/results/inference.json`.

Measured {r['date'][:16].replace('T', ' ')} UTC on {r['model']['weights']} ({r['model']['onnx']}; adapters
{', '.join(r['model'].get('adapters', ['?']))}), {r['machine']['cpus']} CPU cores
shared with other jobs (load average {r['machine']['loadAverageBefore'][0]:.1f} before, {r['machine']['loadAverageAfter'][0]:.1f} after).
Threads: each side runs at the faster of 1 and 2 threads, from a calibration of 4-step pairs
(Node: {fmt(cal['node'])}; diffusers: {fmt(cal['diffusers'])}), so the sides ran with
{r['threads']['node']} (Node) and {r['threads']['diffusers']} (diffusers) thread(s).

| | Node (onnxruntime-node) | diffusers (PyTorch CPU) |
| --- | ---: | ---: |
| images/s | {n['imagesPerSecond']:.2f} | {d['imagesPerSecond']:.2f} |
| pair latency p50 | {n['pairLatencyMs']['p50']:.0f} ms | {d['pairLatencyMs']['p50']:.0f} ms |
| pair latency p95 | {n['pairLatencyMs']['p95']:.0f} ms | {d['pairLatencyMs']['p95']:.0f} ms |
| peak RSS of the process | {n['peakRssMb']:.0f} MB | {d['peakRssMb']:.0f} MB |
| model load | {n['loadMs']:.0f} ms | {d['loadMs']:.0f} ms |

- **Node / diffusers images/s: {ratio:.2f}x** (by median pair latency {lat_ratio:.2f}x). Target >= 2x: {'met' if ratio >= 2 else 'missed'}.
  The UNet dominates both ({n['unetMsPerStepMedian']:.1f} ms per batch-4 step in Node, about the speed of onnxruntime from Python);
  the TypeScript schedulers, noise and CFG cost well under 1 ms per step.
- **Adapter switch, Node: {a['node']['feedBuildMs']:.2f} ms = {a['node']['feedBuildPercentOfStep']:.1f}% of a step** (target < 5%: {'met' if a['node']['feedBuildPercentOfStep'] < 5 else 'missed'} for the switch itself). Switching
  is building the LoRA feed set from the cached, parsed adapter (scale folded into B); sessions are
  never reloaded. End to end, a {a['steps']}-step pair with a different adapter than the previous call took
  {a['node']['switchedAdapterCallMs']:.0f} ms vs {a['node']['sameAdapterCallMs']:.0f} ms with the same one ({a['node']['switchCostMs']:+.1f} ms): a median of
  {len(r.get('adapterSwitchCalls', [])) or 'a few'} single calls per side, too few to resolve a millisecond either way; the feed build
  above is the switch's cost measured directly.
- Adapter switch, diffusers: `set_adapters` {a['diffusers']['setAdaptersMs']:.1f} ms; a {a['steps']}-step pair took {a['diffusers']['switchedAdapterCallMs']:.0f} ms switched vs {a['diffusers']['sameAdapterCallMs']:.0f} ms same.
"""


def family_rows(results: list[dict]) -> str:
    """One row per model family: the same bench, same machine, each run's own Node/diffusers ratio."""
    rows = []
    for r in results:
        n, d = r["node"], r["diffusers"]
        rows.append(
            f"| {r['model'].get('pipeline', 'StableDiffusionPipeline')} | {r['model']['weights']} | {r['date'][:16].replace('T', ' ')} "
            f"| {r['machine']['loadAverageBefore'][0]:.1f} | {n['imagesPerSecond']:.2f} | {d['imagesPerSecond']:.2f} "
            f"| **{r['ratioImagesPerSecond']:.2f}x** | {n['pairLatencyMs']['p50']:.0f} / {d['pairLatencyMs']['p50']:.0f} ms "
            f"| {r['adapterSwitch']['node']['feedBuildMs']:.2f} ms ({r['adapterSwitch']['node']['feedBuildPercentOfStep']:.1f}%) |"
        )
    return (
        "\n### By model family\n\n"
        "The same benchmark per pipeline family (`--family sd` writes `bench/results/inference.json`, "
        "`--family sdxl` writes `bench/results/inference-sdxl.json`; for SDXL the diffusers side is "
        "`StableDiffusionXLPipeline` and the adapters are two random peft adapters it makes under "
        "`test-artifacts/random-sdxl`). No negative prompt on either side: `\"\"` encoded for SD, zeros "
        "for SDXL. Each row's ratio is within its own run.\n\n"
        "| pipeline | model | measured (UTC) | load before | Node images/s | diffusers images/s | Node / diffusers | pair p50 Node / diffusers | LoRA feed build (% of a step) |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    results = ROOT / "bench" / "results"
    r = json.loads((results / "inference.json").read_text())
    extra = [json.loads(f.read_text()) for f in [results / "inference-sdxl.json"] if f.exists()]
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    new = section(r) + family_rows([r, *extra])
    if "## Inference\n" in text:
        text = re.sub(r"## Inference\n.*?(?=\n## |\Z)", new.rstrip("\n") + "\n", text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text)
    print(new)


if __name__ == "__main__":
    main()
