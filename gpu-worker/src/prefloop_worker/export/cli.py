"""`export-onnx`: export a diffusers SD or SDXL pipeline folder to ONNX with LoRA graph inputs.

The family comes from the folder's model_index.json (SDXL: StableDiffusionXLPipeline, or a
text_encoder_2); see onnx_export.py and onnx_export_sdxl.py for what each writes.
"""

from __future__ import annotations

import argparse

DEFAULT_SIZE = {"sd": 512, "sdxl": 1024}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="diffusers pipeline folder (model_index.json, unet/, ...)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--height", type=int, default=None, help="image height (default 512 for SD, 1024 for SDXL)")
    parser.add_argument("--width", type=int, default=None, help="image width (default 512 for SD, 1024 for SDXL)")
    parser.add_argument("--checksums", action="store_true", help="write checksums.sha256 in the output")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..tiny.checksums import write_checksums
    from .onnx_export import export_family, export_pipeline, model_index

    size = DEFAULT_SIZE[export_family(model_index(Path(args.model)))]
    export_pipeline(args.model, args.out, args.height or size, args.width or size)
    if args.checksums:
        write_checksums(args.out)
    return 0
