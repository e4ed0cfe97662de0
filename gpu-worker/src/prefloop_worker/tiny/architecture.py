"""Configurations of the tiny models (real diffusers/transformers classes).

``tiny-shapes`` is Stable Diffusion 1.x-shaped; ``tiny-sdxl-shapes`` is SDXL-shaped: diffusers'
SDXL base configuration (``stabilityai/stable-diffusion-xl-base-1.0``) scaled down, with the
tiny-shapes VAE and tokenizer.
"""

from __future__ import annotations

TEXT_HIDDEN = 64


def text_encoder_config(vocab_size: int, bos_token_id: int, eos_token_id: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=4 * TEXT_HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        projection_dim=TEXT_HIDDEN,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
    )


VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(16, 32, 64),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=64,
    scaling_factor=1.0,  # replaced by 1/std of the training latents after VAE training
)

UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 96),
    layers_per_block=1,
    norm_num_groups=8,
    cross_attention_dim=TEXT_HIDDEN,
    attention_head_dim=8,
    # Pooled text (attention pooling over encoder_hidden_states) added to the time embedding, so
    # every ResNet sees the caption; needs no extra inputs, so SD pipelines and the export work as is.
    addition_embed_type="text",
    addition_embed_type_num_heads=4,
)

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    timestep_spacing="leading",
)


# SDXL: two CLIP text encoders; the second (like OpenCLIP bigG, 1280 wide) has a projection whose
# pooled output conditions the UNet with the time ids; the UNet attends to both hidden states
# concatenated (SDXL: 768 + 1280 = 2048).
SDXL_TEXT_HIDDEN = (32, 64)
SDXL_TIME_EMBED_DIM = 16  # SDXL: 256 per time id


def sdxl_text_encoder_configs(vocab_size: int, bos_token_id: int, eos_token_id: int) -> tuple[dict, dict]:
    """``text_encoder`` (CLIPTextModel, quick_gelu as CLIP ViT-L) and ``text_encoder_2``
    (CLIPTextModelWithProjection, gelu as OpenCLIP bigG). Three layers each: SDXL reads the
    penultimate layer's hidden states."""
    common = dict(vocab_size=vocab_size, max_position_embeddings=77, num_hidden_layers=3, bos_token_id=bos_token_id,
                  eos_token_id=eos_token_id, pad_token_id=eos_token_id)
    one, two = SDXL_TEXT_HIDDEN
    first = dict(common, hidden_size=one, intermediate_size=4 * one, num_attention_heads=2, hidden_act="quick_gelu",
                 projection_dim=one)
    second = dict(common, hidden_size=two, intermediate_size=4 * two, num_attention_heads=4, hidden_act="gelu",
                  projection_dim=two)
    return first, second


SDXL_UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 96),  # SDXL: 320, 640, 1280
    layers_per_block=1,  # SDXL: 2
    transformer_layers_per_block=(1, 1, 2),  # SDXL: 1, 2, 10 (deepest at the lowest resolution)
    attention_head_dim=(2, 4, 6),  # heads, as SDXL's config means it (5, 10, 20): 16 channels each
    use_linear_projection=True,
    norm_num_groups=8,
    cross_attention_dim=sum(SDXL_TEXT_HIDDEN),
    addition_embed_type="text_time",
    addition_time_embed_dim=SDXL_TIME_EMBED_DIM,
    # pooled text embeds of text_encoder_2 + 6 time ids × addition_time_embed_dim (SDXL: 1280 + 6·256 = 2816)
    projection_class_embeddings_input_dim=SDXL_TEXT_HIDDEN[1] + 6 * SDXL_TIME_EMBED_DIM,
)

# SDXL base's scheduler config (EulerDiscreteScheduler); the Node pipeline runs it too.
SDXL_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    interpolation_type="linear",
    use_karras_sigmas=False,
    steps_offset=1,
    timestep_spacing="leading",
)
