"""Training snapshots in Pick-a-Pic v2 columns (Parquet) → preference pairs, winner first.

Columns read (missing optional ones are fine):

* required: ``caption``, ``jpg_0``, ``jpg_1``, ``label_0``, ``label_1``
* optional Pick-a-Pic v2: ``has_label``, ``are_different``, ``image_0_uid``, ``image_1_uid``,
  ``user_id``, ``ranking_id``, ``best_image_uid``
* optional prefloop provenance: ``vote`` (``image_0`` / ``image_1`` / ``tie`` / ``both_bad``),
  ``qc_flagged`` / ``voter_flagged`` (bool), ``qc_flags`` (list of strings, non-empty = flagged),
  ``split`` (``train`` / ``validation`` (also ``heldout``, ``val``) / ``test``)

``jpg_0`` / ``jpg_1`` hold image bytes inline (Pick-a-Pic v2 and prefloop exports) or a blob key:
a ``file://`` / ``s3://`` URI or a path relative to the snapshot's folder.

**Splits, never by accident.** A folder's files are assigned by name: ``train*`` (``train.parquet``,
``train-00000-of-00645.parquet``) are training data, ``validation*`` the held-out data (``test*``
only when there is no validation file); ``validation_unique*`` / ``test_unique*`` are never read
and other ``*.parquet`` files are ignored (counted) when named splits exist. A file whose name
names no split (one snapshot file) is split by its ``split`` column, else by a stable hash of the
caption. A row's ``split`` column wins over its file's name.

**Votes.** A row is a ``preference`` (``vote`` image_0/image_1, else ``label_0 ≠ label_1``), a
``tie`` (``vote = tie``, else 0.5/0.5) or ``both_bad`` (``vote = both_bad``, else 0/0; the platform
writes these with 0.5/0.5 and ``has_label = false``). Pairwise objectives train on preferences only;
KTO also on ties and both-bad votes (``include_ties`` / ``include_both_bad``). Rows without a label
(``has_label`` false and no ``both_bad`` vote), with identical images (``are_different`` false) or
from flagged voters/QC are skipped. ``absolute_winners`` (NCP's ``find_absolute_winners``) keeps
one preference row per image that never lost: being the loser of a preference, either image of a
tie or of a both-bad vote counts as a loss.

**Streaming.** Nothing holds every row: :func:`scan` reads the metadata columns (no images) once,
row group by row group, for the counts and the seeded selections (``max_pairs`` as a seeded
reservoir sample, the held-out and probe sets); :class:`PairStream` then reads the training rows
row group by row group in a seeded order per epoch through a shuffle buffer of ``shuffle_buffer``
pairs. Memory is bounded by the buffer and one record batch, whatever the files' size (only
``absolute_winners`` keeps a set of image uids, and ``max_pairs`` a set of row keys).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

REQUIRED = ("caption", "jpg_0", "jpg_1", "label_0", "label_1")
OPTIONAL = (
    "has_label",
    "are_different",
    "image_0_uid",
    "image_1_uid",
    "vote",
    "qc_flagged",
    "voter_flagged",
    "qc_flags",
    "split",
)
IMAGE_COLUMNS = ("jpg_0", "jpg_1")
HELDOUT_NAMES = {"heldout", "held_out", "validation", "val"}
SPLIT_FILE = re.compile(r"^(train|validation_unique|validation|test_unique|test)(?=[-._])")
READ_BATCH = 64  # rows per record batch while streaming


@dataclass
class PreferencePair:
    caption: str
    winner: bytes | str  # image bytes or a blob key (for ties and both-bad votes: the first image)
    loser: bytes | str
    tie: bool = False
    winner_uid: str | None = None
    loser_uid: str | None = None
    kind: str = "preference"  # preference | tie | both_bad
    key: tuple[int, int] = (0, 0)  # (file index, row index in the file): stable across runs

    @property
    def desirable(self) -> tuple[bool, bool]:
        """KTO labels of the two images: a winner is desirable, a loser and both images of a
        both-bad vote are not; both images of a tie are (the voter found neither worse)."""
        if self.kind == "both_bad":
            return False, False
        if self.kind == "tie":
            return True, True
        return True, False


@dataclass
class SnapshotOptions:
    keep_ties_for_metrics: bool = False
    absolute_winners: bool = False
    exclude_flagged: bool = True
    heldout_fraction: float = 0.1
    max_pairs: int | None = None
    include_ties: bool = False  # train on ties (KTO)
    include_both_bad: bool = False  # train on both-bad votes (KTO)
    seed: int = 0
    heldout_max: int = 64
    probe_max: int = 64
    shuffle_buffer: int = 512


@dataclass
class SnapshotFiles:
    train: list[Path]  # files of training rows (or unsplit files, split by row)
    heldout: list[Path]  # files of held-out rows only
    unsplit: bool  # True: no file names a split; rows decide
    ignored: list[Path] = field(default_factory=list)
    base_dir: str = "."

    @property
    def all(self) -> list[Path]:
        return self.train + self.heldout


def discover(path: str | os.PathLike) -> SnapshotFiles:
    """Which files are training data and which held-out, by file name (module docstring)."""
    path = Path(path)
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"snapshot {path} does not exist")
        return SnapshotFiles([path], [], True, [], str(path.parent))
    files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no .parquet files under {path}")
    by_split: dict[str, list[Path]] = {}
    other = []
    for f in files:
        m = SPLIT_FILE.match(f.name)
        (by_split.setdefault(m.group(1), []) if m else other).append(f)
    if not by_split:
        return SnapshotFiles(files, [], True, [], str(path))
    if "train" not in by_split:
        raise ValueError(f"{path}: no train* Parquet file among the split files {sorted(by_split)}")
    heldout = by_split.get("validation") or by_split.get("test") or []
    ignored = other + [f for s in ("validation_unique", "test_unique") for f in by_split.get(s, [])]
    if by_split.get("validation"):
        ignored += by_split.get("test", [])
    return SnapshotFiles(by_split["train"], heldout, False, sorted(ignored), str(path))


def parquet_files(path: str | os.PathLike) -> list[Path]:
    """The files a snapshot's pairs come from (training and held-out)."""
    return discover(path).all


def _is_heldout_caption(caption: str, fraction: float) -> bool:
    if fraction <= 0:
        return False
    digest = hashlib.sha256(caption.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _uid(value, image) -> str:
    if value:
        return str(value)
    if isinstance(image, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(image).hexdigest()
    return "key:" + str(image)


def _flagged(row: dict) -> bool:
    if row.get("qc_flagged") or row.get("voter_flagged"):
        return True
    flags = row.get("qc_flags")
    return bool(flags) and len(flags) > 0


def vote_of(row: dict) -> str | None:
    """``image_0`` / ``image_1`` / ``tie`` / ``both_bad``, or None for an unusable row."""
    vote = row.get("vote")
    if vote in ("image_0", "image_1", "tie", "both_bad"):
        return vote
    if row.get("has_label") is False:
        return None
    l0, l1 = float(row["label_0"]), float(row["label_1"])
    if l0 == 0 and l1 == 0:
        return "both_bad"
    if l0 == l1:
        return "tie"
    return "image_0" if l0 > l1 else "image_1"


def _row_split(row: dict, file_split: str | None, options: SnapshotOptions) -> str:
    """``train``, ``heldout`` or ``test`` for one row."""
    split = (row.get("split") or "").lower()
    if split:
        if split in HELDOUT_NAMES:
            return "heldout"
        return "test" if split.startswith("test") else ("train" if split == "train" else "other")
    if file_split is not None:
        return file_split
    return "heldout" if _is_heldout_caption(row["caption"] or "", options.heldout_fraction) else "train"


def classify(row: dict, file_split: str | None, options: SnapshotOptions, counts: Counter | None = None):
    """(kind, split, vote) of a usable row, or None (counted under the reason in ``counts``)."""
    counts = counts if counts is not None else Counter()
    vote = vote_of(row)
    if vote is None:
        counts["unlabelled"] += 1
        return None
    if row.get("are_different") is False:
        counts["identical_images"] += 1
        return None
    if options.exclude_flagged and _flagged(row):
        counts["flagged"] += 1
        return None
    kind = {"tie": "tie", "both_bad": "both_bad"}.get(vote, "preference")
    counts[{"tie": "ties", "both_bad": "both_bad"}.get(kind, "preferences")] += 1
    return kind, _row_split(row, file_split, options), vote


def make_pair(row: dict, kind: str, vote: str, key: tuple[int, int]) -> PreferencePair:
    uid0 = _uid(row.get("image_0_uid"), row["jpg_0"])
    uid1 = _uid(row.get("image_1_uid"), row["jpg_1"])
    caption = row["caption"] or ""
    if vote == "image_1":
        return PreferencePair(caption, row["jpg_1"], row["jpg_0"], False, uid1, uid0, kind, key)
    return PreferencePair(caption, row["jpg_0"], row["jpg_1"], kind == "tie", uid0, uid1, kind, key)


def _columns(file: Path, images: bool) -> list[str]:
    names = set(pq.read_schema(file).names)
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ValueError(f"{file}: missing columns {missing}")
    cols = [c for c in REQUIRED if images or c not in IMAGE_COLUMNS] + [c for c in OPTIONAL if c in names]
    return cols


def _file_split(files: SnapshotFiles, file: Path) -> str | None:
    if files.unsplit:
        return None
    return "heldout" if file in files.heldout else "train"


def _rows(file: Path, columns: list[str], row_groups: list[int] | None = None) -> Iterator[tuple[int, dict]]:
    """(row index in the file, row) for the given row groups, one record batch at a time."""
    pf = pq.ParquetFile(file, pre_buffer=False)
    groups = range(pf.num_row_groups) if row_groups is None else row_groups
    starts = [0]
    for g in range(pf.num_row_groups):
        starts.append(starts[-1] + pf.metadata.row_group(g).num_rows)
    for g in groups:
        index = starts[g]
        for batch in pf.iter_batches(batch_size=READ_BATCH, row_groups=[g], columns=columns, use_threads=False):
            for row in batch.to_pylist():
                yield index, row
                index += 1


class _Reservoir:
    """A seeded uniform sample of ``k`` items from a stream (Algorithm R)."""

    def __init__(self, k: int, seed: int):
        self.k, self.rng, self.items, self.seen = max(0, k), random.Random(seed), [], 0

    def offer(self, item) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = self.rng.randrange(self.seen)
            if j < self.k:
                self.items[j] = item


@dataclass
class SnapshotScan:
    """What one metadata pass over a snapshot found (no image bytes)."""

    files: SnapshotFiles
    options: SnapshotOptions
    counts: Counter
    train_pairs: int
    heldout: list[PreferencePair]  # seeded sample of at most heldout_max, images loaded
    probe: list[PreferencePair]  # seeded sample of at most probe_max training pairs, images loaded
    selected: frozenset | None  # training row keys when max_pairs / absolute_winners select rows
    base_dir: str = "."

    def trains_on(self, kind: str) -> bool:
        return kind == "preference" or (kind == "tie" and self.options.include_ties) or (
            kind == "both_bad" and self.options.include_both_bad)


def scan(path: str | os.PathLike, options: SnapshotOptions | None = None) -> SnapshotScan:
    """One pass over the metadata columns: counts, seeded selections, held-out and probe pairs."""
    options = options or SnapshotOptions()
    files = discover(path)
    counts: Counter = Counter()
    counts["ignored_files"] = len(files.ignored)
    heldout_by_split: dict[str, _Reservoir] = {s: _Reservoir(options.heldout_max, options.seed + 11) for s in ("heldout", "test")}
    train_keys: list | None = [] if (options.max_pairs is not None or options.absolute_winners) else None
    lost: set[str] = set()
    winners: dict[str, tuple[int, int]] = {}  # absolute winners: winner uid → its first row
    train_n = 0
    probe = _Reservoir(options.probe_max, options.seed + 13)
    for fi, file in enumerate(files.all):
        file_split = _file_split(files, file)
        need_images = options.absolute_winners and not {"image_0_uid", "image_1_uid"} <= set(pq.read_schema(file).names)
        for ri, row in _rows(file, _columns(file, need_images)):
            counts["rows"] += 1
            got = classify(row, file_split, options, counts)
            if got is None:
                continue
            kind, split, vote = got
            key = (fi, ri)
            if options.absolute_winners:
                uid0 = _uid(row.get("image_0_uid"), row.get("jpg_0"))
                uid1 = _uid(row.get("image_1_uid"), row.get("jpg_1"))
                if vote in ("image_0", "image_1"):
                    lost.add(uid1 if vote == "image_0" else uid0)
                else:
                    lost.update((uid0, uid1))
            if split in ("heldout", "test"):
                if kind == "preference" or (kind == "tie" and options.keep_ties_for_metrics):
                    heldout_by_split[split].offer(key)
                continue
            if split != "train":
                counts["other_split"] += 1
                continue
            if not (kind == "preference" or (kind == "tie" and options.include_ties)
                    or (kind == "both_bad" and options.include_both_bad)):
                continue
            if options.absolute_winners and kind == "preference":
                counts["train_preferences"] += 1
                winners.setdefault(uid0 if vote == "image_0" else uid1, key)
                continue
            if train_keys is not None:
                train_keys.append(key)
            else:
                train_n += 1
                probe.offer(key)
    if options.absolute_winners:
        kept = [key for uid, key in winners.items() if uid not in lost]
        counts["not_absolute_winner"] = counts.pop("train_preferences", 0) - len(kept)
        train_keys = sorted(train_keys + kept)
    selected = None
    if train_keys is not None:
        if options.max_pairs is not None and len(train_keys) > options.max_pairs:
            sample = _Reservoir(options.max_pairs, options.seed + 17)
            for key in train_keys:
                sample.offer(key)
            train_keys = sorted(sample.items)
        selected = frozenset(train_keys)
        train_n = len(train_keys)
        probe = _Reservoir(options.probe_max, options.seed + 13)
        for key in train_keys:
            probe.offer(key)
    held = heldout_by_split["heldout"] if heldout_by_split["heldout"].seen else heldout_by_split["test"]
    counts["train_pairs"] = train_n
    counts["heldout_pairs"] = len(held.items)
    heldout = load_pairs(files, sorted(held.items), options)
    probe_pairs = load_pairs(files, sorted(probe.items), options)
    return SnapshotScan(files, options, counts, train_n, heldout, probe_pairs, selected, files.base_dir)


def load_pairs(files: SnapshotFiles, keys: list[tuple[int, int]], options: SnapshotOptions) -> list[PreferencePair]:
    """The pairs at ``keys`` with their images, reading only the row groups that hold them."""
    wanted: dict[int, set[int]] = {}
    for fi, ri in keys:
        wanted.setdefault(fi, set()).add(ri)
    out: dict[tuple[int, int], PreferencePair] = {}
    all_files = files.all
    for fi, rows in wanted.items():
        file = all_files[fi]
        pf = pq.ParquetFile(file)
        starts = [0]
        for g in range(pf.num_row_groups):
            starts.append(starts[-1] + pf.metadata.row_group(g).num_rows)
        groups = sorted({g for r in rows for g in range(pf.num_row_groups) if starts[g] <= r < starts[g + 1]})
        for ri, row in _rows(file, _columns(file, True), groups):
            if ri in rows:
                kind, _, vote = classify(row, _file_split(files, file), options)
                out[(fi, ri)] = make_pair(row, kind, vote, (fi, ri))
    return [out[k] for k in keys]


class PairStream:
    """Training pairs of one epoch after another, in a seeded order, with bounded memory.

    Per epoch: the training files' row groups in a seeded permutation, their rows filtered as in
    :func:`scan`, through a shuffle buffer. The order depends only on (seed, epoch), so a resume
    replays the epoch up to its position (reading, not decoding) and every process of a
    multi-process run sees the same order.
    """

    def __init__(self, snapshot: SnapshotScan, seed: int, epoch: int = 0, position: int = 0):
        if snapshot.train_pairs == 0:
            raise ValueError(f"no training pairs in the snapshot ({dict(snapshot.counts)})")
        self.snapshot, self.seed = snapshot, seed
        self.epoch, self.position = epoch, 0
        self._it = self._epoch(epoch)
        for _ in range(position):
            next(self._it)
            self.position += 1

    def _epoch(self, epoch: int) -> Iterator[PreferencePair]:
        snap = self.snapshot
        rng = random.Random(self.seed * 1_000_003 + epoch)
        units = []
        all_files = snap.files.all
        for file in snap.files.train:
            fi = all_files.index(file)
            units += [(fi, g) for g in range(pq.ParquetFile(file).num_row_groups)]
        rng.shuffle(units)
        size = max(1, snap.options.shuffle_buffer)
        buffer: list[PreferencePair] = []
        for fi, g in units:
            file = all_files[fi]
            file_split = _file_split(snap.files, file)
            for ri, row in _rows(file, _columns(file, True), [g]):
                key = (fi, ri)
                if snap.selected is not None and key not in snap.selected:
                    continue
                got = classify(row, file_split, snap.options)
                if got is None or got[1] != "train" or not snap.trains_on(got[0]):
                    continue
                pair = make_pair(row, got[0], got[2], key)
                if len(buffer) < size:
                    buffer.append(pair)
                    continue
                j = rng.randrange(size)
                yield buffer[j]
                buffer[j] = pair
        rng.shuffle(buffer)
        yield from buffer

    def take(self, k: int) -> list[PreferencePair]:
        out = []
        while len(out) < k:
            try:
                out.append(next(self._it))
                self.position += 1
            except StopIteration:
                self.epoch += 1
                self.position = 0
                self._it = self._epoch(self.epoch)
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}


@dataclass
class PreferenceSnapshot:
    """A whole (small) snapshot in memory, training pairs in file order: for tests and tools."""

    train: list[PreferencePair]
    heldout: list[PreferencePair]
    counts: Counter = field(default_factory=Counter)
    base_dir: str | None = None


def read_snapshot(path: str | os.PathLike, options: SnapshotOptions | None = None) -> PreferenceSnapshot:
    """Every training pair in file order (held-out: the seeded sample of :func:`scan`)."""
    options = options or SnapshotOptions()
    snap = scan(path, options)
    train = []
    all_files = snap.files.all
    for file in snap.files.train:
        fi = all_files.index(file)
        for ri, row in _rows(file, _columns(file, True)):
            if snap.selected is not None and (fi, ri) not in snap.selected:
                continue
            got = classify(row, _file_split(snap.files, file), options)
            if got is None or got[1] != "train" or not snap.trains_on(got[0]):
                continue
            train.append(make_pair(row, got[0], got[2], (fi, ri)))
    return PreferenceSnapshot(train, snap.heldout, snap.counts, snap.base_dir)
