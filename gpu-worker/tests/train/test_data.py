"""Snapshot reading rules and the paired augmentation."""

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from prefloop_worker.data.images import load_image, paired_crop, paired_views
from prefloop_worker.data.snapshot import SnapshotOptions, read_snapshot
from prefloop_worker.shapes.grammar import PALETTE

import synthetic


def _row(i, label_0, label_1, **kw):
    row = {
        "caption": f"caption {i}", "jpg_0": f"A{i}".encode(), "jpg_1": f"B{i}".encode(),
        "label_0": label_0, "label_1": label_1, "image_0_uid": f"a{i}", "image_1_uid": f"b{i}",
        "has_label": True, "are_different": True, "qc_flagged": False,
    }
    row.update(kw)
    return row


def _write(tmp_path, rows, name="s.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_rules(tmp_path):
    rows = [
        _row(0, 1.0, 0.0),
        _row(1, 0.0, 1.0),  # winner on the right → swapped, winner first
        _row(2, 0.5, 0.5),  # tie
        _row(3, 0.0, 0.0),  # both bad
        _row(4, 1.0, 0.0, qc_flagged=True),
        _row(5, 1.0, 0.0, has_label=False),
        _row(6, 1.0, 0.0, are_different=False),
    ]
    snap = read_snapshot(_write(tmp_path, rows), SnapshotOptions(heldout_fraction=0.0))
    assert [(p.caption, p.winner, p.loser) for p in snap.train] == [
        ("caption 0", b"A0", b"B0"),
        ("caption 1", b"B1", b"A1"),
    ]
    c = snap.counts
    assert (c["ties"], c["both_bad"], c["flagged"], c["unlabelled"], c["identical_images"]) == (1, 1, 1, 1, 1)
    kept = read_snapshot(_write(tmp_path, rows), SnapshotOptions(heldout_fraction=0.0, exclude_flagged=False))
    assert len(kept.train) == 3


def test_ties_kept_for_metrics_only_and_split_column(tmp_path):
    rows = [_row(0, 1.0, 0.0, split="train"), _row(1, 0.5, 0.5, split="validation"), _row(2, 0.5, 0.5, split="train"),
            _row(3, 0.0, 1.0, split="test"), _row(4, 0.0, 1.0, split="heldout")]
    snap = read_snapshot(_write(tmp_path, rows), SnapshotOptions(keep_ties_for_metrics=True))
    assert [p.caption for p in snap.train] == ["caption 0"]
    # validation rows are the held-out set; test rows are never read while there is validation
    assert sorted((p.caption, p.tie) for p in snap.heldout) == [("caption 1", True), ("caption 4", False)]
    only_test = read_snapshot(_write(tmp_path, [_row(0, 1.0, 0.0, split="train"), _row(3, 0.0, 1.0, split="test")], "t.parquet"))
    assert [p.caption for p in only_test.heldout] == ["caption 3"]


def test_absolute_winners(tmp_path):
    # x wins twice (one row kept per winner); y wins once but also loses once; v wins once but is in a
    # tie, which counts as a loss for both images; u wins once and never loses
    rows = [
        _row(0, 1.0, 0.0, image_0_uid="x", image_1_uid="y"),
        _row(1, 1.0, 0.0, image_0_uid="x", image_1_uid="z"),
        _row(2, 1.0, 0.0, image_0_uid="y", image_1_uid="w"),
        _row(3, 0.0, 1.0, image_0_uid="q", image_1_uid="v"),
        _row(4, 0.5, 0.5, image_0_uid="v", image_1_uid="r"),
        _row(5, 0.0, 1.0, image_0_uid="s", image_1_uid="u"),
    ]
    snap = read_snapshot(_write(tmp_path, rows), SnapshotOptions(heldout_fraction=0.0, absolute_winners=True))
    assert [(p.caption, p.winner_uid) for p in snap.train] == [("caption 0", "x"), ("caption 5", "u")]
    assert snap.counts["not_absolute_winner"] == 3


def test_votes_column_both_bad_and_ties_for_kto(tmp_path):
    rows = [
        _row(0, 1.0, 0.0, vote="image_0"),
        _row(1, 0.5, 0.5, vote="both_bad", has_label=False),  # how the platform exports a both-bad vote
        _row(2, 0.5, 0.5, vote="tie"),
        _row(3, 0.0, 1.0, vote="image_1"),
        _row(4, 0.0, 0.0, vote=None),  # the older both-bad convention: 0/0 labels
    ]
    path = _write(tmp_path, rows)
    pairs = read_snapshot(path, SnapshotOptions(heldout_fraction=0.0))
    assert [(p.caption, p.kind) for p in pairs.train] == [("caption 0", "preference"), ("caption 3", "preference")]
    assert pairs.train[1].winner == b"B3"
    kto = read_snapshot(path, SnapshotOptions(heldout_fraction=0.0, include_ties=True, include_both_bad=True))
    assert [(p.caption, p.kind, p.desirable) for p in kto.train] == [
        ("caption 0", "preference", (True, False)),
        ("caption 1", "both_bad", (False, False)),
        ("caption 2", "tie", (True, True)),
        ("caption 3", "preference", (True, False)),
        ("caption 4", "both_bad", (False, False)),
    ]
    assert (kto.counts["both_bad"], kto.counts["ties"], kto.counts["unlabelled"]) == (2, 1, 0)


def test_pick_a_pic_folder_trains_on_train_files_only(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, start in (("train-00000-of-00002.parquet", 0), ("train-00001-of-00002.parquet", 10),
                        ("validation-00000-of-00001.parquet", 20), ("validation_unique-00000-of-00001.parquet", 30),
                        ("test-00000-of-00001.parquet", 40), ("test_unique-00000-of-00001.parquet", 50)):
        _write(data, [_row(start + i, 1.0, 0.0) for i in range(3)], name)
    snap = read_snapshot(tmp_path, SnapshotOptions(heldout_fraction=0.5))  # the fraction is unused: files decide
    assert sorted(int(p.caption.split()[1]) for p in snap.train) == [0, 1, 2, 10, 11, 12]
    assert sorted(int(p.caption.split()[1]) for p in snap.heldout) == [20, 21, 22]
    assert snap.counts["ignored_files"] == 3
    # the platform's snapshot folder
    plat = tmp_path / "platform"
    plat.mkdir()
    _write(plat, [_row(i, 1.0, 0.0, split="train") for i in range(4)], "train.parquet")
    _write(plat, [_row(10 + i, 0.0, 1.0, split="validation") for i in range(2)], "validation.parquet")
    _write(plat, [_row(20 + i, 0.0, 1.0, split="test") for i in range(2)], "test.parquet")
    snap = read_snapshot(plat, SnapshotOptions())
    assert sorted(p.caption for p in snap.train) == [f"caption {i}" for i in range(4)]
    assert sorted(p.caption for p in snap.heldout) == ["caption 10", "caption 11"]
    lone = tmp_path / "val-only"
    lone.mkdir()
    _write(lone, [_row(0, 1.0, 0.0)], "validation.parquet")
    with pytest.raises(ValueError, match="no train"):
        read_snapshot(lone)


def test_max_pairs_is_a_seeded_sample(tmp_path):
    path = _write(tmp_path, [_row(i, 1.0, 0.0) for i in range(100)])

    def sample(seed):
        return [p.caption for p in read_snapshot(path, SnapshotOptions(heldout_fraction=0.0, max_pairs=10, seed=seed)).train]

    a, b, c = sample(0), sample(0), sample(1)
    assert len(a) == 10 and a == b and a != c
    assert a != [f"caption {i}" for i in range(10)]  # not the first rows


def test_stream_order_is_seeded_and_covers_every_pair_once_per_epoch(tmp_path):
    from prefloop_worker.data.snapshot import PairStream, scan

    path = tmp_path / "rg.parquet"
    pq.write_table(pa.Table.from_pylist([_row(i, 1.0, 0.0) for i in range(50)]), path, row_group_size=7)
    snap = scan(path, SnapshotOptions(heldout_fraction=0.0, shuffle_buffer=8))
    stream = PairStream(snap, seed=3)
    first = [p.key for p in stream.take(50)]
    assert sorted(first) == [(0, i) for i in range(50)] and first != sorted(first)
    second = [p.key for p in stream.take(50)]
    assert sorted(second) == sorted(first) and second != first  # a new order per epoch
    again = PairStream(snap, seed=3)
    assert [p.key for p in again.take(50)] == first
    resumed = PairStream(snap, seed=3, epoch=1, position=20)
    assert [p.key for p in resumed.take(30)] == second[20:]


def test_heldout_split_is_by_caption(tmp_path):
    rows = [_row(i % 20, 1.0, 0.0) for i in range(200)]
    snap = read_snapshot(_write(tmp_path, rows), SnapshotOptions(heldout_fraction=0.3))
    train_caps = {p.caption for p in snap.train}
    held_caps = {p.caption for p in snap.heldout}
    assert train_caps and held_caps and not (train_caps & held_caps)


def test_images_as_blob_keys_and_folder_of_files(tmp_path):
    (tmp_path / "img").mkdir()
    for name, colour in (("w.png", "red"), ("l.png", "purple")):
        (tmp_path / "img" / name).write_bytes(synthetic.render(colour, "circle", "white"))
    rows = [{"caption": "a red circle", "jpg_0": "img/w.png", "jpg_1": "img/l.png", "label_0": 1.0, "label_1": 0.0}]
    (tmp_path / "part").mkdir()
    _write(tmp_path, rows, "part-0.parquet")
    snap = read_snapshot(tmp_path, SnapshotOptions(heldout_fraction=0.0))
    image = load_image(snap.train[0].winner, snap.base_dir)
    assert image.getpixel((32, 32)) == PALETTE["red"]
    with pytest.raises(ValueError):
        load_image("s3://bucket/key.png")  # a URI needs a blob reader
    assert load_image("s3://b/k", read_blob=lambda uri: synthetic.render("green", "square", "black")).size == (64, 64)


def test_paired_views_share_crop_and_flip():
    def gradient(offset):
        a = np.tile(np.arange(96, dtype=np.uint8)[None, :, None], (80, 1, 3)) + offset
        return Image.fromarray(a)

    w, l = gradient(0), gradient(100)
    g = torch.Generator().manual_seed(3)
    a, b = paired_views(w, l, 64, random_crop=True, flip=True, generator=g)
    assert a.shape == b.shape == (3, 64, 64)
    assert torch.allclose(b - a, torch.full_like(a, 100 / 127.5), atol=1e-5)  # same window, same flip
    assert a[0, 0, 0] > a[0, 0, -1]  # flipped: the gradient now decreases


def test_paired_crop_reports_sdxl_micro_conditioning():
    """Original size (h, w) of the first image; the crop window's (top, left) in the resized image,
    measured in the flipped image when flipped (what the pixels at the window's left edge were)."""
    columns = np.tile(np.arange(96, dtype=np.uint8)[None, :, None], (80, 1, 3))
    w, l = Image.fromarray(columns), Image.fromarray(columns).resize((48, 40))
    views = paired_crop(w, l, 64)  # 96×80 → 77×64: centre window at left 6
    assert views.original_size == (80, 96) and views.crop_top_left == (0, 6)
    flipped = paired_crop(w, l, 64, flip=True)
    assert flipped.crop_top_left == (0, 77 - 64 - 6)
    assert torch.equal(flipped.first, views.first.flip(-1)) and flipped.second.shape == (3, 64, 64)
    g = torch.Generator().manual_seed(5)
    lefts = {paired_crop(w, l, 64, random_crop=True, generator=g).crop_top_left for _ in range(20)}
    assert all(top == 0 and 0 <= left <= 13 for top, left in lefts) and len(lefts) > 3
