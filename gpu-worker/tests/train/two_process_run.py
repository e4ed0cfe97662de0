"""One training run in each of two CPU processes (launched by torch.distributed.run): the
multi-process resume test's worker. Arguments: base model, snapshot, output folder, [--stop-after N]."""

import argparse
import json
from pathlib import Path

import torch

from prefloop_worker.train.config import TrainConfig
from prefloop_worker.train.trainer import PreferenceTrainer

torch.set_num_threads(1)
parser = argparse.ArgumentParser()
parser.add_argument("base")
parser.add_argument("snapshot")
parser.add_argument("out")
parser.add_argument("--stop-after", type=int, default=None)
args = parser.parse_args()
out = Path(args.out)
cfg = TrainConfig(
    base_model=args.base, dataset=args.snapshot, output_dir=str(out / "adapter"), beta=1000.0, steps=4, learning_rate=1e-2,
    batch_size=2, seed=3, heldout_fraction=0.3, heldout_max=4, eval_every=-1, progress=False, caption_dropout=0.3, flip=True,
    checkpoint_path=str(out / "checkpoint.safetensors"), metrics_path=str(out / "metrics.jsonl"), stop_after=args.stop_after,
)
trainer = PreferenceTrainer(cfg, log=lambda m: None)
result = trainer.train()
if trainer.accelerator.is_main_process:
    (out / "ranks.json").write_text(json.dumps({"world": trainer.accelerator.num_processes, "resumed_from": result.resumed_from}))
# leave the process group together: a rank that exits while the other still holds gloo threads aborts it
if torch.distributed.is_initialized():
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
