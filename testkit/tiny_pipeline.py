"""Tiny random-weight diffusers pipelines built from configs (the tests' fixtures save one per session).

The pipeline has the real Stable Diffusion shape (UNet with cross-attention, a 4-block VAE so
latents are 8x smaller than images, a CLIP text encoder and tokenizer) at a size where a
4-image 64x64 run takes a fraction of a second on a CPU. Nothing is downloaded.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

TINY_MODEL_MAX_TOKENS = 32


def build_tiny_tokenizer(folder: Path):
    """A CLIPTokenizer whose vocabulary is single characters (with and without the end-of-word mark)."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in string.ascii_lowercase + string.digits + ".,!?-'":
        vocab.setdefault(symbol, len(vocab))
        vocab.setdefault(symbol + "</w>", len(vocab))
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=TINY_MODEL_MAX_TOKENS)
    tokenizer.save_pretrained(folder)
    return CLIPTokenizer.from_pretrained(folder)


def clip_text_encoder(vocab_size: int, hidden_size: int, with_projection: bool) -> Any:
    """A 2-layer CLIP text encoder for `build_tiny_tokenizer`'s vocabulary (SDXL and SD3 read the
    second-to-last hidden state)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=TINY_MODEL_MAX_TOKENS,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        projection_dim=hidden_size,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def build_tiny_pipeline(tokenizer_folder: Path, width: int = 16):
    """A StableDiffusionPipeline with random weights, seeded so every build is identical.

    `width` is the UNet's first block width (the second is twice that); benchmarks use wider ones.
    """
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer = build_tiny_tokenizer(tokenizer_folder)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(width, 2 * width),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
    )
    text_encoder = clip_text_encoder(len(tokenizer), 16, with_projection=False)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_model(folder: Path, width: int = 16) -> Path:
    """Build the tiny pipeline and save it as a diffusers folder at `folder`; return `folder`."""
    pipe = build_tiny_pipeline(folder.parent / f"{folder.name}-tokenizer", width)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def save_tiny_lora(model_folder: Path, folder: Path) -> Path:
    """A LoRA for the tiny UNet's attention layers with random (non-zero) weights; returns the file."""
    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(model_folder)
    torch.manual_seed(1)
    # init_lora_weights=False: random A and B, so the LoRA visibly changes images (the default B is zero).
    config = LoraConfig(
        r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    pipe.unet.add_adapter(config)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(pipe.unet))
    return folder / "pytorch_lora_weights.safetensors"
