import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import lora_feeds
from prefloop_worker.export.lora_inputs import TARGETS, UNetWithLoraInputs

PROMPT = "two small red circles on a blue background"


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir / "unet").eval()
    g = torch.Generator().manual_seed(0)
    sample = torch.randn((2, 4, 16, 16), generator=g)
    timestep = torch.tensor([981.0, 21.0])
    hidden = torch.randn((2, 77, unet.config.cross_attention_dim), generator=g)
    return unet, sample, timestep, hidden


@pytest.fixture(scope="module")
def unet_session(tiny_onnx_dir):
    return session(tiny_onnx_dir / "unet" / "model.onnx")


def feeds(manifest, sample, timestep, hidden, lora: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
    feed = {"sample": sample.numpy(), "timestep": timestep.numpy(), "encoder_hidden_states": hidden.numpy()}
    return feed | lora_feeds(manifest, lora)


def test_manifest_describes_every_attention_projection(tiny_onnx_dir, reference, unet_session):
    manifest = json.loads((tiny_onnx_dir / "manifest.json").read_text())
    unet = reference[0]
    expected = [f"{n}.{t}" for n, m in unet.named_modules() if type(m).__name__ == "Attention" for t in TARGETS]
    assert [t["module"] for t in manifest["lora"]["targets"]] == expected
    names = {i.name for i in unet_session.get_inputs()}
    for t in manifest["lora"]["targets"]:
        assert {t["input_a"], t["input_b"]} <= names
        assert t["key_a"] == f"unet.{t['module']}.lora_A.weight"
    assert manifest["lora"]["scale_folded_into"] == "B"
    assert len(names) == 3 + 2 * len(expected)


def test_unet_matches_diffusers_without_adapter(tiny_onnx_dir, reference, unet_session):
    unet, sample, timestep, hidden = reference
    manifest = json.loads((tiny_onnx_dir / "manifest.json").read_text())
    with torch.no_grad():
        expected = unet(sample, timestep, hidden).sample.numpy()
    got = unet_session.run(["noise_pred"], feeds(manifest, sample, timestep, hidden))[0]
    assert np.abs(got - expected).max() < 1e-4


def test_unet_matches_peft_with_random_adapter(tiny_onnx_dir, tiny_model_dir, reference, unet_session):
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    _, sample, timestep, hidden = reference
    manifest = json.loads((tiny_onnx_dir / "manifest.json").read_text())
    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir / "unet").eval()
    rank, alpha = 4, 16
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(TARGETS)))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
        expected = unet(sample, timestep, hidden).sample.numpy()
        expected_half = unet(sample, timestep, hidden, cross_attention_kwargs={"scale": 0.5}).sample.numpy()
    state = {f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}
    assert {t["key_a"] for t in manifest["lora"]["targets"]} | {t["key_b"] for t in manifest["lora"]["targets"]} == set(state)
    for strength, reference_out in ((1.0, expected), (0.5, expected_half)):
        scale = alpha / rank * strength
        lora = {t["module"]: (state[t["key_a"]].numpy(), (state[t["key_b"]] * scale).numpy()) for t in manifest["lora"]["targets"]}
        got = unet_session.run(["noise_pred"], feeds(manifest, sample, timestep, hidden, lora))[0]
        err = np.abs(got - reference_out).max()
        assert err < 1e-4, err
    # and the adapter matters: rank-0 output differs from the adapted one
    base = unet_session.run(["noise_pred"], feeds(manifest, sample, timestep, hidden))[0]
    assert np.abs(base - expected).max() > 1e-3


def test_wrapper_rank_zero_is_base_model(reference):
    import copy

    unet, sample, timestep, hidden = reference
    wrapped = UNetWithLoraInputs(copy.deepcopy(unet)).eval()
    with torch.no_grad():
        base = unet(sample, timestep, hidden).sample
        got = wrapped(sample, timestep, hidden, *wrapped.zero_rank_inputs())
    assert torch.equal(base, got)


def test_text_encoder_and_vae_decoder_match(tiny_onnx_dir, tiny_model_dir):
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_model_dir / "tokenizer")
    te = CLIPTextModel.from_pretrained(tiny_model_dir / "text_encoder").eval()
    ids = tok([PROMPT, ""], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = te(ids).last_hidden_state.numpy()
    got = session(tiny_onnx_dir / "text_encoder" / "model.onnx").run(["last_hidden_state"], {"input_ids": ids.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4

    vae = AutoencoderKL.from_pretrained(tiny_model_dir / "vae").eval()
    latents = torch.randn((2, 4, 16, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = vae.decode(latents / vae.config.scaling_factor).sample.numpy()
    got = session(tiny_onnx_dir / "vae_decoder" / "model.onnx").run(["image"], {"latents": latents.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_tokenizer_json_matches_transformers(tiny_onnx_dir, tiny_model_dir):
    from tokenizers import Tokenizer
    from transformers import CLIPTokenizer

    raw = Tokenizer.from_file(str(tiny_onnx_dir / "tokenizer" / "tokenizer.json"))
    tok = CLIPTokenizer.from_pretrained(tiny_model_dir / "tokenizer")
    # the saved tokenizer.json carries padding (fixed 77, pad 641) and truncation (77, EOS kept)
    for prompt in (PROMPT, "", "Ünïcode, MIXED case!! 🎨", " ".join(["a large red circle"] * 30)):
        assert raw.encode(prompt).ids == tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids


def test_export_command_writes_a_complete_folder(tmp_path, tiny_model_dir):
    from prefloop_worker.__main__ import main

    assert main(["export-onnx", "--model", str(tiny_model_dir), "--out", str(tmp_path), "--height", "64", "--width", "64"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for part in ("text_encoder", "unet", "vae_decoder"):
        assert (tmp_path / manifest["components"][part]["file"]).exists()
    assert (tmp_path / "tokenizer" / "tokenizer.json").exists()
    assert (tmp_path / "scheduler" / "scheduler_config.json").exists()
    assert manifest["image"] == {"height": 64, "width": 64, "channels": 3, "range": [-1, 1]}
    assert manifest["latents"]["height"] == 16
