"""Reference scores of the demo voters' preference rules, computed with NumPy.

Writes tests/fixtures/demo/preference.json: small seeded RGB / RGBA images and each rule's
score, which functions/src/demo/preference.ts must reproduce. The rules are written out here
from their definitions (mean Rec. 709 luma, mean HSV saturation, mean redness, and the distance
of the content's centroid from the centre), never from the code under test.

Run: .venv/bin/python scripts/demo_preference_reference.py
"""

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "demo" / "preference.json"


def scores(img):
    rgb = img[..., :3].astype(np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b
    mx, mn = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = np.where(mx == 0, 0.0, (mx - mn) / np.where(mx == 0, 1, mx))
    h, w = r.shape
    border = np.ones((h, w), dtype=bool)
    border[1:-1, 1:-1] = False
    bg = rgb[border].mean(axis=0)
    mass = np.abs(rgb - bg).sum(axis=-1)
    if mass.sum() == 0:
        centered = 0.0
    else:
        ys, xs = np.mgrid[0:h, 0:w]
        cx = (mass * (xs + 0.5)).sum() / mass.sum()
        cy = (mass * (ys + 0.5)).sum() / mass.sum()
        centered = -float(np.hypot(cx - w / 2, cy - h / 2) / np.hypot(w / 2, h / 2))
    return {
        "brighter": float(luma.mean()),
        "darker": -float(luma.mean()),
        "saturated": float(sat.mean()),
        "centered": centered,
        "red": float((r - (g + b) / 2).mean()),
    }


def main():
    rng = np.random.default_rng(20261130)
    cases = []
    for i, (w, h, c) in enumerate([(4, 4, 3), (7, 5, 3), (6, 6, 4), (9, 3, 3), (8, 8, 3)]):
        img = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
        if i == 4:  # a blob off centre on a flat background
            img[...] = 20
            img[1:3, 5:7, :3] = 230
        cases.append({"width": w, "height": h, "channels": c, "data": img.reshape(-1).tolist(), "scores": scores(img)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(f"  {json.dumps(c)}" for c in cases)
    OUT.write_text('{"cases": [\n' + lines + "\n]}\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
