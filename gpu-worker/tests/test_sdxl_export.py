"""SDXL ONNX export (prefloop-onnx-sdxl/1) of models/tiny-sdxl-shapes against diffusers/transformers."""

import copy
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import lora_feeds
from prefloop_worker.export.lora_inputs import TARGETS, SDXLUNetWithLoraInputs
from prefloop_worker.tiny.checksums import verify_checksums

REPO = Path(__file__).resolve().parents[2]
TINY_SDXL = REPO / "models" / "tiny-sdxl-shapes"
TINY_SDXL_ONNX = REPO / "models" / "tiny-sdxl-shapes-onnx"
PROMPTS = ["two small red circles on a blue background", ""]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A fresh export of the tiny SDXL model through the command line, and its manifest."""
    from prefloop_worker.__main__ import main

    out = tmp_path_factory.mktemp("sdxl-onnx")
    assert main(["export-onnx", "--model", str(TINY_SDXL), "--out", str(out), "--height", "64", "--width", "64"]) == 0
    return out, json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(TINY_SDXL, add_watermarker=False)
    pipe.unet.eval()
    return pipe


@pytest.fixture(scope="module")
def unet_inputs(pipe):
    g = torch.Generator().manual_seed(0)
    sample = torch.randn((2, 4, 16, 16), generator=g)
    timestep = torch.tensor([981.0, 21.0])
    hidden = torch.randn((2, 77, pipe.unet.config.cross_attention_dim), generator=g)
    text_embeds = torch.randn((2, pipe.text_encoder_2.config.projection_dim), generator=g)
    time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [128.0, 96.0, 8.0, 4.0, 64.0, 64.0]])
    return sample, timestep, hidden, text_embeds, time_ids


@pytest.fixture(scope="module")
def base_output(pipe, unet_inputs) -> torch.Tensor:
    sample, timestep, hidden, text_embeds, time_ids = unet_inputs
    with torch.no_grad():
        return pipe.unet(sample, timestep, hidden, added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample


@pytest.fixture(scope="module")
def unet_session(exported):
    out, manifest = exported
    return session(out / manifest["components"]["unet"]["file"])


def feeds(manifest, sample, timestep, hidden, text_embeds, time_ids, lora=None) -> dict:
    feed = {
        "sample": sample.numpy(),
        "timestep": timestep.numpy(),
        "encoder_hidden_states": hidden.numpy(),
        "text_embeds": text_embeds.numpy(),
        "time_ids": time_ids.numpy(),
    }
    return feed | lora_feeds(manifest, lora)


def test_manifest_is_the_sdxl_contract(exported, pipe, unet_session):
    out, m = exported
    assert m["format"] == "prefloop-onnx-sdxl/1"
    assert m["pipeline"] == "StableDiffusionXLPipeline"
    assert m["force_zeros_for_empty_prompt"] is True
    assert m["add_time_ids"] == {
        "order": ["original_height", "original_width", "crop_top", "crop_left", "target_height", "target_width"],
        "addition_time_embed_dim": 16,
        "text_encoder_projection_dim": 64,
    }
    assert m["image"] == {"height": 64, "width": 64, "channels": 3, "range": [-1, 1]}
    assert m["latents"] == {"channels": 4, "height": 16, "width": 16, "vae_scale_factor": 4, "vae_scaling_factor": pipe.vae.config.scaling_factor}
    assert m["scheduler"] == {"file": "scheduler/scheduler_config.json", "class": "EulerDiscreteScheduler"}
    for key, tok in (("tokenizer", pipe.tokenizer), ("tokenizer_2", pipe.tokenizer_2)):
        entry = m[key]
        assert entry["file"] == f"{key}/tokenizer.json" and (out / entry["file"]).exists()
        assert (entry["max_length"], entry["bos_token_id"], entry["eos_token_id"], entry["pad_token_id"]) == (
            tok.model_max_length,
            tok.bos_token_id,
            tok.eos_token_id,
            tok.pad_token_id,
        )
    c = m["components"]
    assert set(c) == {"text_encoder", "text_encoder_2", "unet", "vae_decoder"}
    assert c["text_encoder"]["outputs"] == {"penultimate_hidden_state": {"dtype": "float32", "shape": ["batch", 77, 32]}}
    assert c["text_encoder_2"]["outputs"] == {
        "penultimate_hidden_state": {"dtype": "float32", "shape": ["batch", 77, 64]},
        "text_embeds": {"dtype": "float32", "shape": ["batch", 64]},
    }
    unet = c["unet"]
    assert {k: v["shape"] for k, v in unet["inputs"].items()} == {
        "sample": ["batch", 4, 16, 16],
        "timestep": ["batch"],
        "encoder_hidden_states": ["batch", 77, 96],
        "text_embeds": ["batch", 64],
        "time_ids": ["batch", 6],
    }
    assert {v["dtype"] for v in unet["inputs"].values()} == {"float32"}
    assert unet["prediction_type"] == "epsilon"
    # the graphs' own inputs and outputs are the manifest's, in this order
    for name, part in c.items():
        s = unet_session if name == "unet" else session(out / part["file"])
        graph_inputs = [i.name for i in s.get_inputs()]
        assert graph_inputs[: len(part["inputs"])] == list(part["inputs"]), name
        assert [o.name for o in s.get_outputs()] == list(part["outputs"]), name
    targets = m["lora"]["targets"]
    expected = [f"{n}.{t}" for n, mod in pipe.unet.named_modules() if type(mod).__name__ == "Attention" for t in TARGETS]
    assert [t["module"] for t in targets] == expected
    assert [i.name for i in unet_session.get_inputs()][5:] == [x for t in targets for x in (t["input_a"], t["input_b"])]
    assert targets[0]["key_a"] == f"unet.{targets[0]['module']}.lora_A.weight"


def test_text_encoders_match_encode_prompt(exported, pipe):
    from tokenizers import Tokenizer

    out, m = exported
    ids = []
    for key, tok in (("tokenizer", pipe.tokenizer), ("tokenizer_2", pipe.tokenizer_2)):
        expected = tok(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        raw = Tokenizer.from_file(str(out / m[key]["file"]))
        assert [e.ids for e in raw.encode_batch(PROMPTS)] == expected.tolist()
        ids.append(expected.numpy())
    (h1,) = session(out / "text_encoder" / "model.onnx").run(["penultimate_hidden_state"], {"input_ids": ids[0]})
    h2, pooled = session(out / "text_encoder_2" / "model.onnx").run(
        ["penultimate_hidden_state", "text_embeds"], {"input_ids": ids[1]}
    )
    with torch.no_grad():
        prompt_embeds, _, pooled_embeds, _ = pipe.encode_prompt(PROMPTS, do_classifier_free_guidance=False)
        direct_1 = pipe.text_encoder(torch.from_numpy(ids[0]), output_hidden_states=True).hidden_states[-2]
    assert h1.shape == (2, 77, 32) and h2.shape == (2, 77, 64) and pooled.shape == (2, 64)
    assert np.abs(np.concatenate([h1, h2], axis=-1) - prompt_embeds.numpy()).max() < 1e-5
    assert np.abs(pooled - pooled_embeds.numpy()).max() < 1e-5
    assert np.abs(h1 - direct_1.numpy()).max() < 1e-5
    # the penultimate layer, not the last one
    with torch.no_grad():
        last_1 = pipe.text_encoder(torch.from_numpy(ids[0])).last_hidden_state.numpy()
    assert np.abs(h1 - last_1).max() > 1e-2


def test_unet_matches_diffusers_without_adapter(exported, unet_session, unet_inputs, base_output):
    _, m = exported
    sample, timestep, hidden, text_embeds, time_ids = unet_inputs
    unet = unet_session
    got = unet.run(["noise_pred"], feeds(m, *unet_inputs))[0]
    assert np.abs(got - base_output.numpy()).max() < 1e-4
    # time_ids and text_embeds are wired: other values give another output
    swapped = unet.run(["noise_pred"], feeds(m, sample, timestep, hidden, text_embeds, time_ids.flip(0)))[0]
    assert np.abs(swapped - got).max() > 1e-4
    zero_pooled = unet.run(["noise_pred"], feeds(m, sample, timestep, hidden, torch.zeros_like(text_embeds), time_ids))[0]
    assert np.abs(zero_pooled - got).max() > 1e-4


def test_unet_matches_peft_with_random_adapter(exported, pipe, unet_session, unet_inputs):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    _, m = exported
    sample, timestep, hidden, text_embeds, time_ids = unet_inputs
    added = {"text_embeds": text_embeds, "time_ids": time_ids}
    unet = copy.deepcopy(pipe.unet).eval()
    rank, alpha = 4, 8
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(TARGETS)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        expected = unet(sample, timestep, hidden, added_cond_kwargs=added).sample.numpy()
        expected_half = unet(sample, timestep, hidden, added_cond_kwargs=added, cross_attention_kwargs={"scale": 0.5}).sample.numpy()
    state = {f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}
    targets = m["lora"]["targets"]
    assert {t["key_a"] for t in targets} | {t["key_b"] for t in targets} == set(state)
    s = unet_session
    for strength, reference_out in ((1.0, expected), (0.5, expected_half)):
        scale = alpha / rank * strength
        lora = {t["module"]: (state[t["key_a"]].numpy(), (state[t["key_b"]] * scale).numpy()) for t in targets}
        got = s.run(["noise_pred"], feeds(m, *unet_inputs, lora))[0]
        err = np.abs(got - reference_out).max()
        assert err < 1e-4, err
    base = s.run(["noise_pred"], feeds(m, *unet_inputs))[0]
    assert np.abs(base - expected).max() > 1e-3


def test_wrapper_rank_zero_is_base_model(pipe, unet_inputs, base_output):
    sample, timestep, hidden, text_embeds, time_ids = unet_inputs
    wrapped = SDXLUNetWithLoraInputs(copy.deepcopy(pipe.unet)).eval()
    base = base_output
    with torch.no_grad():
        got = wrapped(sample, timestep, hidden, text_embeds, time_ids, *wrapped.zero_rank_inputs())
    assert torch.equal(base, got)


def test_vae_decoder_matches(exported, pipe):
    out, _ = exported
    latents = torch.randn((2, 4, 16, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = pipe.vae.decode(latents / pipe.vae.config.scaling_factor).sample.numpy()
    got = session(out / "vae_decoder" / "model.onnx").run(["image"], {"latents": latents.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_sd_export_keeps_its_format(tmp_path):
    from prefloop_worker.export.onnx_export import export_pipeline

    manifest = export_pipeline(REPO / "models" / "tiny-shapes", tmp_path, 64, 64, components=())
    assert manifest["format"] == "prefloop-onnx-sd/1"
    assert "pipeline" not in manifest and "tokenizer_2" not in manifest and "add_time_ids" not in manifest
    assert json.loads((tmp_path / "manifest.json").read_text())["format"] == "prefloop-onnx-sd/1"


def test_committed_folder_is_this_export(exported):
    """models/tiny-sdxl-shapes-onnx is what the exporter writes today (re-export it when this fails)."""
    _, fresh = exported
    committed = json.loads((TINY_SDXL_ONNX / "manifest.json").read_text())
    assert committed["source"].pop("model_dir") == "models/tiny-sdxl-shapes"
    fresh = copy.deepcopy(fresh)
    fresh["source"].pop("model_dir")
    assert committed == fresh
    assert verify_checksums(TINY_SDXL_ONNX) == []


# --- the committed export against tests/fixtures/golden-sdxl (written by diffusers, make-golden-sdxl) ---

GOLDEN_SDXL = REPO / "tests" / "fixtures" / "golden-sdxl"


def golden(name: str) -> dict:
    return json.loads((GOLDEN_SDXL / name).read_text())


def decode(t: dict) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(t["b64"]), dtype=t["dtype"]).reshape(t["shape"]).copy()


class OnnxSDXL:
    """The SDXL call order of the golden README, on the committed ONNX folder (what the Node pipeline does)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.manifest = m = json.loads((folder / "manifest.json").read_text())
        self.tokenizers = [Tokenizer.from_file(str(folder / m[k]["file"])) for k in ("tokenizer", "tokenizer_2")]
        self.sessions = {name: session(folder / part["file"]) for name, part in m["components"].items()}

    def input_ids(self, prompts: list[str]) -> list[np.ndarray]:
        return [np.array([e.ids for e in tok.encode_batch(prompts)], np.int64) for tok in self.tokenizers]

    def encode(self, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        ids_1, ids_2 = self.input_ids(prompts)
        (h1,) = self.sessions["text_encoder"].run(["penultimate_hidden_state"], {"input_ids": ids_1})
        h2, pooled = self.sessions["text_encoder_2"].run(["penultimate_hidden_state", "text_embeds"], {"input_ids": ids_2})
        return np.concatenate([h1, h2], axis=-1), pooled

    def unet(self, sample, timestep, hidden, text_embeds, time_ids, lora=None) -> np.ndarray:
        tensors = [torch.from_numpy(np.asarray(x, np.float32)) for x in (sample, timestep, hidden, text_embeds, time_ids)]
        return self.sessions["unet"].run(["noise_pred"], feeds(self.manifest, *tensors, lora))[0]

    def adapter_feeds(self, path: Path, strength: float = 1.0) -> dict:
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            meta = json.loads(f.metadata()["lora_adapter_metadata"])
            scale = meta["unet.lora_alpha"] / meta["unet.r"] * strength
            return {t["module"]: (f.get_tensor(t["key_a"]), f.get_tensor(t["key_b"]) * scale) for t in self.manifest["lora"]["targets"]}


@pytest.fixture(scope="module")
def onnx_sdxl() -> OnnxSDXL:
    return OnnxSDXL(TINY_SDXL_ONNX)


def test_golden_text_encoders(onnx_sdxl):
    g = golden("text_encoders.json")
    ids_1, ids_2 = onnx_sdxl.input_ids(g["prompts"])
    assert ids_1.tolist() == decode(g["tokenizer"]["input_ids"]).tolist()
    assert ids_2.tolist() == decode(g["tokenizer_2"]["input_ids"]).tolist()
    prompt_embeds, pooled = onnx_sdxl.encode(g["prompts"])
    assert np.abs(prompt_embeds - decode(g["prompt_embeds"])).max() < 1e-5
    assert np.abs(pooled - decode(g["pooled_prompt_embeds"])).max() < 1e-5
    assert np.abs(prompt_embeds[..., :32] - decode(g["text_encoder"]["penultimate_hidden_state"])).max() < 1e-5
    assert np.abs(pooled - decode(g["text_encoder_2"]["text_embeds"])).max() < 1e-5


def test_golden_unet_with_the_saved_adapter(onnx_sdxl):
    g = golden("unet.json")
    inputs = [decode(g["inputs"][k]) for k in ("sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids")]
    adapter = GOLDEN_SDXL / g["adapter"]["file"]
    assert np.abs(onnx_sdxl.unet(*inputs) - decode(g["no_adapter"])).max() < 1e-4
    for strength, key in ((1.0, "with_adapter"), (0.5, "with_adapter_strength_0_5")):
        got = onnx_sdxl.unet(*inputs, lora=onnx_sdxl.adapter_feeds(adapter, strength))
        assert np.abs(got - decode(g[key])).max() < 1e-4, key


@pytest.mark.parametrize("index", range(6))
def test_golden_pipeline_runs(onnx_sdxl, index):
    """The golden README's call order on the ONNX graphs, with diffusers' scheduler, reproduces each run."""
    import diffusers

    run = golden("pipelines.json")["runs"][index]
    cond, pooled = onnx_sdxl.encode([run["prompt"]])
    if run["negative_prompt"] is None and onnx_sdxl.manifest["force_zeros_for_empty_prompt"]:
        uncond, uncond_pooled = np.zeros_like(cond), np.zeros_like(pooled)
    else:
        uncond, uncond_pooled = onnx_sdxl.encode([run["negative_prompt"] or ""])
    hidden, text_embeds = np.concatenate([uncond, cond]), np.concatenate([uncond_pooled, pooled])
    time_ids = np.array([run["add_time_ids"]] * 2, np.float32)
    lora = onnx_sdxl.adapter_feeds(GOLDEN_SDXL / "adapter" / "pytorch_lora_weights.safetensors") if run["adapter"] else None
    scheduler = getattr(diffusers, run["scheduler"]).from_config(run["scheduler_config"])
    scheduler.set_timesteps(run["num_inference_steps"])
    assert [float(t) for t in scheduler.timesteps] == run["timesteps"]
    latents = torch.from_numpy(decode(run["initial_noise"])) * scheduler.init_noise_sigma
    assert np.abs(latents.numpy() - decode(run["initial_latents"])).max() < 1e-6
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        eps = torch.from_numpy(onnx_sdxl.unet(x.numpy(), np.full(2, float(t)), hidden, text_embeds, time_ids, lora))
        eps = eps[:1] + run["guidance_scale"] * (eps[1:] - eps[:1])
        latents = scheduler.step(eps, t, latents).prev_sample
        assert np.abs(latents.numpy() - decode(run["latents_after_step"][i]["latents"])).max() < 1e-3, (run["name"], i)
    assert np.abs(latents.numpy() - decode(run["final_latents"])).max() < 1e-3
    (image,) = onnx_sdxl.sessions["vae_decoder"].run(["image"], {"latents": latents.numpy()})
    pixels = np.clip(image[0].transpose(1, 2, 0) / 2 + 0.5, 0, 1)
    assert np.abs(pixels - decode(run["image_float"])).max() < 1e-3
    assert np.abs(np.round(pixels * 255).astype(int) - decode(run["image_uint8"]).astype(int)).max() <= 1
