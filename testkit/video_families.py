"""Tiny random-weight image-to-video models of every video family Kaika runs, saved as a user's VIDEO_MODEL.

Each keeps what the engine must handle about its family (pipeline class, temporal VAE and its frame counts,
latent layout, text encoder and tokenizer, image encoder, motion control) and shrinks everything else, after
the way diffusers' own tests build theirs (`get_dummy_components()`); tokenizers are built in code and
nothing is downloaded. Every build is seeded, so two builds are identical.

    folder = save_tiny_video_family("svd", tmp / "tiny-svd")        # VIDEO_MODEL=folder
    folder = save_tiny_video_family("animatediff", tmp / "adapter")  # a MotionAdapter for the tiny SD model
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.families import _t5_encoder, build_t5_tokenizer

# name → the pipeline class VIDEO_MODEL loads (AnimateDiff: the adapter, on the tiny SD 1.x image model).
VIDEO_FAMILY_CLASSES = {
    "svd": "StableVideoDiffusionPipeline",
    "animatediff": "AnimateDiffVideoToVideoPipeline",
    "ltx": "LTXImageToVideoPipeline",
    "wan": "WanImageToVideoPipeline",
    "cogvideox": "CogVideoXImageToVideoPipeline",
}
VIDEO_FAMILY_NAMES = tuple(VIDEO_FAMILY_CLASSES)
# The image size each tiny family animates at (CogVideoX 1.0's learned positions fix its size).
TINY_VIDEO_SIZES = {"svd": 32, "animatediff": 32, "ltx": 32, "wan": 32, "cogvideox": 16}


def save_tiny_video_family(name: str, folder: Path) -> Path:
    """Build the tiny video model of family `name` and save it at `folder` (a diffusers pipeline folder, or for
    "animatediff" a MotionAdapter folder matching `testkit.tiny_pipeline`'s UNet); return `folder`."""
    if name not in VIDEO_FAMILY_CLASSES:
        raise ValueError(f"unknown video family {name!r}; known: {', '.join(VIDEO_FAMILY_NAMES)}")
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = _BUILDERS[name]()
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def _clip_vision(hidden: int, projection: int, image_size: int = 32, patch_size: int = 4) -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(
        hidden_size=hidden,
        projection_dim=projection,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        intermediate_size=2 * hidden,
        patch_size=patch_size,
    )
    return CLIPVisionModelWithProjection(config), CLIPImageProcessor(crop_size=image_size, size=image_size)


def _svd() -> Any:
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )

    # Its blocks normalise in 32 groups, so 32 channels is as narrow as it goes.
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=4,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=2,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        latent_channels=4,
        layers_per_block=1,
    )
    # SVD resizes the image to CLIP's 224 pixels itself; 32-pixel patches keep that to 49 tokens.
    image_encoder, feature_extractor = _clip_vision(32, 32, image_size=224, patch_size=32)
    return StableVideoDiffusionPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        feature_extractor=feature_extractor,
    )


def _animatediff() -> Any:
    from diffusers import MotionAdapter

    # Matches testkit.tiny_pipeline's UNet: blocks of 16 and 32 channels, one layer each.
    return MotionAdapter(
        block_out_channels=(16, 32),
        motion_layers_per_block=1,
        motion_norm_num_groups=8,
        motion_num_attention_heads=2,
        motion_max_seq_length=32,
    )


def _ltx() -> Any:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXImageToVideoPipeline,
        LTXVideoTransformer3DModel,
    )

    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    tokenizer = build_t5_tokenizer()
    return LTXImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=_t5_encoder(len(tokenizer), d_model=32),
        tokenizer=tokenizer,
    )


def _wan() -> Any:
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
    )

    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=36,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=1,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=4,
    )
    image_encoder, image_processor = _clip_vision(4, 4)
    tokenizer = build_t5_tokenizer()
    return WanImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=_t5_encoder(len(tokenizer), d_model=32),
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        image_processor=image_processor,
    )


def _cogvideox() -> Any:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXImageToVideoPipeline,
        CogVideoXTransformer3DModel,
    )

    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        sample_width=2,
        sample_height=2,
        sample_frames=9,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=16,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    vae = AutoencoderKLCogVideoX(
        in_channels=3,
        out_channels=3,
        down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    tokenizer = build_t5_tokenizer()
    return CogVideoXImageToVideoPipeline(
        transformer=transformer,
        vae=vae,
        scheduler=CogVideoXDDIMScheduler(),
        text_encoder=_t5_encoder(len(tokenizer), d_model=32),
        tokenizer=tokenizer,
    )


_BUILDERS = {"svd": _svd, "animatediff": _animatediff, "ltx": _ltx, "wan": _wan, "cogvideox": _cogvideox}
