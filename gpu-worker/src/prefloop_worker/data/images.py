"""Decoding and the paired augmentation: the same crop and flip for both images of a pair."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ImageSource = bytes | str
BlobReader = Callable[[str], bytes]


def load_image(source: ImageSource, base_dir: str | None = None, read_blob: BlobReader | None = None) -> Image.Image:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif "://" in source:
        if read_blob is None:
            raise ValueError(f"image {source!r} is a blob URI but no blob reader was given")
        data = read_blob(source)
    else:
        path = Path(base_dir or ".") / source
        data = path.read_bytes()
    return Image.open(io.BytesIO(data)).convert("RGB")


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    if min(w, h) == size:
        return image
    scale = size / min(w, h)
    return image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """HWC uint8 → CHW float in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@dataclass
class PairedViews:
    """Both images of a pair, cropped alike, and what SDXL's micro-conditioning reads from them."""

    first: torch.Tensor
    second: torch.Tensor
    original_size: tuple[int, int]  # (height, width) of the first image as decoded
    crop_top_left: tuple[int, int]  # (top, left) of the crop window in the resized image the crop was taken from


def paired_crop(
    winner: Image.Image,
    loser: Image.Image,
    size: int,
    *,
    random_crop: bool = False,
    flip: bool = False,
    generator: torch.Generator | None = None,
) -> PairedViews:
    """Resize both to ``size`` on the short side, then the same crop window and flip for both.

    The second image is brought to the first's size (as diffusers' SDXL DPO script brings
    ``jpg_1`` to ``jpg_0``'s), so the first's size is the pair's original size. A flipped crop's
    top-left is measured in the flipped image, as the script (which flips before cropping) does.
    """
    original_size = (winner.height, winner.width)
    winner, loser = resize_short_side(winner, size), resize_short_side(loser, size)
    if loser.size != winner.size:
        loser = loser.resize(winner.size, Image.BILINEAR)
    w, h = winner.size
    if random_crop:
        left = int(torch.randint(0, w - size + 1, (1,), generator=generator))
        top = int(torch.randint(0, h - size + 1, (1,), generator=generator))
    else:
        left, top = (w - size) // 2, (h - size) // 2
    box = (left, top, left + size, top + size)
    a, b = to_tensor(winner.crop(box)), to_tensor(loser.crop(box))
    if flip:
        a, b = a.flip(-1), b.flip(-1)
        left = w - size - left
    return PairedViews(a, b, original_size, (top, left))


def paired_views(
    winner: Image.Image,
    loser: Image.Image,
    size: int,
    *,
    random_crop: bool = False,
    flip: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two cropped tensors of :func:`paired_crop`."""
    views = paired_crop(winner, loser, size, random_crop=random_crop, flip=flip, generator=generator)
    return views.first, views.second
