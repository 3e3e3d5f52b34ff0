"""Configurations of the demo model's parts: a 4x AutoencoderKL, a small UNet, a tiny CLIP text encoder.

Everything is a stock diffusers / transformers class, so the saved folder loads like any user's model.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from pipeline.demo.scenes import IMAGE_SIZE
from pipeline.demo.tokenizer import MAX_TOKENS

LATENT_CHANNELS = 4
LATENT_SIZE = IMAGE_SIZE // 4
TEXT_WIDTH = 128


def build_vae() -> AutoencoderKL:
    """64x64x3 → 16x16x4: three blocks, two downsamples; no attention, so it stays fully convolutional."""
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=8,
        sample_size=IMAGE_SIZE,
        mid_block_add_attention=False,
    )


def build_unet() -> UNet2DConditionModel:
    """Latents 16x16; cross-attention to the caption at 8x8 and 4x4 where objects and places are bound."""
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(64, 96, 96),
        layers_per_block=1,
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=(2, 4, 4),  # diffusers' name for the number of heads
        norm_num_groups=32,
    )


def build_text_encoder(
    vocab_size: int, bos_token_id: int, eos_token_id: int, pad_token_id: int
) -> CLIPTextModel:
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=TEXT_WIDTH,
            intermediate_size=TEXT_WIDTH * 2,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )
    )


_SCHEDULE = {
    "num_train_timesteps": 1000,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "prediction_type": "v_prediction",
    # Zero terminal SNR: the last training step is pure noise, exactly what sampling starts from.
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "clip_sample": False,
    "steps_offset": 1,
}


def build_training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**_SCHEDULE)


def build_sampling_scheduler() -> DDIMScheduler:
    return DDIMScheduler(**_SCHEDULE, set_alpha_to_one=True)
