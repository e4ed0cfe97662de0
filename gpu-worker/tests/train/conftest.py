import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402


@pytest.fixture(scope="session")
def tiny_shapes() -> Path:
    if not synthetic.tiny_shapes_ready():
        pytest.skip("needs the trained tiny model at models/tiny-shapes (python -m prefloop_worker make-tiny-model)")
    return synthetic.TINY_SHAPES


@pytest.fixture(scope="session")
def tiny_sdxl() -> Path:
    if not synthetic.tiny_sdxl_ready():
        pytest.skip("needs the tiny SDXL model at models/tiny-sdxl-shapes (make-tiny-model --family sdxl)")
    return synthetic.TINY_SDXL


@pytest.fixture(scope="session")
def world_snapshot(tmp_path_factory, tiny_shapes) -> Path:
    rows = synthetic.shapes_rows(128, seed=1)
    return synthetic.write_snapshot(tmp_path_factory.mktemp("world") / "snapshot.parquet", rows)


@pytest.fixture(scope="session")
def random_sd(tmp_path_factory) -> Path:
    return synthetic.build_random_sd(tmp_path_factory.mktemp("random-sd-b") / "model")


@pytest.fixture(scope="session")
def snapshot_path(tmp_path_factory) -> Path:
    rows = synthetic.shapes_rows(32, seed=1)
    return synthetic.write_snapshot(tmp_path_factory.mktemp("snap") / "snapshot.parquet", rows)


import torch  # noqa: E402

torch.set_num_threads(1)  # 2 shared cores: one thread per process is fastest here


@pytest.fixture
def make_cfg(tmp_path):
    from prefloop_worker.train.config import TrainConfig

    def make(base, snapshot, name="run", **kw):
        values = dict(
            base_model=str(base), dataset=str(snapshot), output_dir=str(tmp_path / name / "adapter"),
            objective="dpo", space="latent", beta=1000.0, rank=4, alpha=4.0, steps=4, learning_rate=1e-3,
            batch_size=4, seed=0, heldout_fraction=0.3, heldout_max=4, eval_every=1000, progress=False,
            metrics_path=str(tmp_path / name / "metrics.jsonl"),
        )
        values.update(kw)
        return TrainConfig(**values)

    return make
