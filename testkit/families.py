"""Tiny random-weight pipelines of every major diffusers model family, saved as a user's model folder.

Each family keeps what the engine must handle about it (pipeline class, VAE scale factor, latent
channels, patching or packing of latents, text encoders and their tokenizers, scheduler kind) and
shrinks everything else (a few channels, one or two layers), so a 2-step run at the smallest size
takes a fraction of a second on a CPU. Tokenizers are built in code from a small vocabulary of
characters; nothing is downloaded. Every build is seeded, so two builds are identical.

    folder = save_tiny_family("flux", tmp / "tiny-flux")
    AutoPipelineForText2Image.from_pretrained(folder)  # a FluxPipeline

"sd15" is `testkit.tiny_pipeline`'s model; the others are built here after the way diffusers' own
tests build theirs (`get_dummy_components()`), at each family's real latent layout.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from testkit.tiny_pipeline import (
    build_tiny_pipeline,
    build_tiny_tokenizer,
    clip_text_encoder,
    save_tiny_model,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from diffusers import AutoencoderKL, DiffusionPipeline
    from transformers import GemmaTokenizerFast, T5EncoderModel, T5TokenizerFast


@dataclass(frozen=True)
class TinyFamily:
    """Facts about one tiny family that tests assert against (the real family's values, tiny widths aside).

    `vae_scale`: image pixels per latent pixel along a side. `latent_channels`: channels of the VAE's
    latents. `patch_size`: latent pixels per side of one denoiser token (1 for UNets). `packed`: the
    pipeline itself packs patch_size x patch_size latent pixels into one token (FLUX), so the denoiser
    takes `latent_channels * patch_size**2` input channels. `size_multiple`: widths and heights the
    pipeline generates exactly, without rounding or resizing.
    """

    name: str
    pipeline_class_name: str
    vae_scale: int
    latent_channels: int
    patch_size: int
    packed: bool
    size_multiple: int


TINY_FAMILIES: dict[str, TinyFamily] = {
    family.name: family
    for family in (
        TinyFamily("sd15", "StableDiffusionPipeline", 8, 4, 1, False, 8),
        TinyFamily("sdxl", "StableDiffusionXLPipeline", 8, 4, 1, False, 8),
        TinyFamily("sd3", "StableDiffusion3Pipeline", 8, 16, 2, False, 16),
        TinyFamily("flux", "FluxPipeline", 8, 16, 2, True, 16),
        TinyFamily("pixart", "PixArtSigmaPipeline", 8, 4, 2, False, 16),
        TinyFamily("sana", "SanaPipeline", 32, 32, 1, False, 32),
        TinyFamily("lcm", "LatentConsistencyModelPipeline", 8, 4, 1, False, 8),
        # Kandinsky 3 rounds sizes up to a multiple of 64 (its pipeline's `downscale_height_and_width`).
        TinyFamily("kandinsky3", "Kandinsky3Pipeline", 8, 4, 1, False, 64),
    )
}
FAMILIES: tuple[str, ...] = tuple(TINY_FAMILIES)

# Characters the T5 and Gemma tokenizers know; anything else becomes their unknown token.
_SYMBOLS = string.ascii_letters + string.digits + ".,!?-'"


def save_tiny_family(name: str, folder: Path) -> Path:
    """Build the tiny pipeline of family `name` (one of FAMILIES) and save it as a diffusers folder at
    `folder`, loadable with `AutoPipelineForText2Image.from_pretrained(folder)`; return `folder`."""
    if name not in TINY_FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    if name == "sd15":
        return save_tiny_model(folder)
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    pipe = _BUILDERS[name](folder)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


# Tokenizers and text encoders ---------------------------------------------------------------------


def build_t5_tokenizer() -> T5TokenizerFast:
    """A T5 tokenizer over single characters, with the pre-tokenizer, decoder and `</s>` ending that
    transformers' own T5 tokenizer uses, so it reloads from its saved `tokenizer.json` unchanged."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + symbol, -2.5) for symbol in _SYMBOLS] + [(symbol, -3.0) for symbol in _SYMBOLS]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    metaspace = {"replacement": "▁", "prepend_scheme": "always", "split": True}
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(**metaspace)]
    )
    backend.decoder = decoders.Metaspace(**metaspace)
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
        model_max_length=512,
    )


def build_gemma_tokenizer() -> GemmaTokenizerFast:
    """A Gemma tokenizer over single characters (BPE without merges, spaces as `▁`, `<bos>` first), built
    like transformers' own so that it reloads unchanged."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import GemmaTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3}
    for symbol in "▁" + _SYMBOLS:
        vocab.setdefault(symbol, len(vocab))
    backend = Tokenizer(
        models.BPE(vocab=vocab, merges=[], fuse_unk=True, unk_token="<unk>", byte_fallback=True)
    )
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_previous", invert=False)
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 2)]
    )
    return GemmaTokenizerFast(tokenizer_object=backend, model_max_length=2048)


def _t5_encoder(vocab_size: int, d_model: int = 32) -> T5EncoderModel:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=d_model,
            d_kv=8,
            d_ff=2 * d_model,
            num_layers=1,
            num_heads=d_model // 8,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )


def _autoencoder_kl(
    latent_channels: int, scaling_factor: float, shift_factor: float | None = None
) -> AutoencoderKL:
    """A 4-block AutoencoderKL (latents 8x smaller than images); `shift_factor` set means the
    SD3/FLUX layout, which also drops the quant convolutions."""
    from diffusers import AutoencoderKL

    with_quant_conv = shift_factor is None
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=with_quant_conv,
        use_post_quant_conv=with_quant_conv,
    )


# Families ---------------------------------------------------------------------------------------


def _build_sdxl(folder: Path) -> DiffusionPipeline:
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tokenizer = build_tiny_tokenizer(folder / "tokenizer")
    tokenizer_2 = build_tiny_tokenizer(folder / "tokenizer_2")
    text_encoder = clip_text_encoder(len(tokenizer), 16, with_projection=False)
    # Wider than the first, as in SDXL (768 and 1280): single-file loading tells the two apart by width.
    text_encoder_2 = clip_text_encoder(len(tokenizer_2), 24, with_projection=True)
    time_embed_dim = 8
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        # The two encoders' hidden states side by side.
        cross_attention_dim=16 + 24,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        # Six size/crop numbers, each embedded, and the second encoder's pooled projection.
        projection_class_embeddings_input_dim=6 * time_embed_dim + 24,
    )
    vae = _autoencoder_kl(4, scaling_factor=0.13025)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="leading",
        steps_offset=1,
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )


def _build_sd3(folder: Path) -> DiffusionPipeline:
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    tokenizer = build_tiny_tokenizer(folder / "tokenizer")
    tokenizer_2 = build_tiny_tokenizer(folder / "tokenizer_2")
    tokenizer_3 = build_t5_tokenizer()
    text_encoder = clip_text_encoder(len(tokenizer), 16, with_projection=True)
    text_encoder_2 = clip_text_encoder(len(tokenizer_2), 16, with_projection=True)
    # The pipeline pads the two CLIP states (16 + 16) to T5's width and joins them along the sequence.
    text_encoder_3 = _t5_encoder(len(tokenizer_3), d_model=32)
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        joint_attention_dim=32,
        caption_projection_dim=16,
        pooled_projection_dim=16 + 16,
        pos_embed_max_size=192,  # as SD3 Medium: 3072-pixel sides at most
    )
    vae = _autoencoder_kl(16, scaling_factor=1.5305, shift_factor=0.0609)
    return StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tokenizer_3,
    )


def _build_flux(folder: Path) -> DiffusionPipeline:
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from diffusers.schedulers import FlowMatchEulerDiscreteScheduler

    tokenizer = build_tiny_tokenizer(folder / "tokenizer")
    tokenizer_2 = build_t5_tokenizer()
    text_encoder = clip_text_encoder(len(tokenizer), 16, with_projection=False)
    text_encoder_2 = _t5_encoder(len(tokenizer_2), d_model=32)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16 * 2 * 2,  # the pipeline packs 2x2 latent pixels into one token
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=16,
        guidance_embeds=True,  # as FLUX.1-dev: the guidance scale is an input, not classifier-free
        axes_dims_rope=(4, 6, 6),
    )
    vae = _autoencoder_kl(16, scaling_factor=0.3611, shift_factor=0.1159)
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def _build_pixart(folder: Path) -> DiffusionPipeline:
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    tokenizer = build_t5_tokenizer()
    text_encoder = _t5_encoder(len(tokenizer), d_model=32)
    transformer = PixArtTransformer2DModel(
        # 32 is the smallest size the pipeline's default resolution binning knows (its 256 px table).
        sample_size=32,
        patch_size=2,
        in_channels=4,
        out_channels=8,  # noise and the learned variance
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=32,
        use_additional_conditions=False,
    )
    vae = _autoencoder_kl(4, scaling_factor=0.13025)
    scheduler = DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
    return PixArtSigmaPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def _build_sana(folder: Path) -> DiffusionPipeline:
    from diffusers import AutoencoderDC, DPMSolverMultistepScheduler, SanaPipeline, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    tokenizer = build_gemma_tokenizer()
    text_encoder = Gemma2Model(
        Gemma2Config(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=2048,
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=2,
        )
    )
    transformer = SanaTransformer2DModel(
        # 16 is the smallest size the pipeline's default resolution binning knows (its 512 px table).
        sample_size=16,
        patch_size=1,
        in_channels=32,
        out_channels=32,
        num_layers=1,
        num_attention_heads=2,
        attention_head_dim=8,
        num_cross_attention_heads=2,
        cross_attention_head_dim=8,
        cross_attention_dim=16,
        caption_channels=16,
    )
    # Six stages (5 halvings: latents 32x smaller) with 32 latent channels, as DC-AE f32c32.
    vae = AutoencoderDC(
        in_channels=3,
        latent_channels=32,
        attention_head_dim=8,
        encoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
        decoder_block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
        # The deepest stage is as wide as the latents: the decoder's input shortcut repeats latent channels.
        encoder_block_out_channels=(8, 8, 16, 16, 32, 32),
        decoder_block_out_channels=(8, 8, 16, 16, 32, 32),
        encoder_layers_per_block=(1, 1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1, 1),
        encoder_qkv_multiscales=((), (), (), (5,), (5,), (5,)),
        decoder_qkv_multiscales=((), (), (), (5,), (5,), (5,)),
        scaling_factor=0.41407,
    )
    scheduler = DPMSolverMultistepScheduler(
        beta_schedule="linear",
        beta_start=0.0001,
        beta_end=0.02,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=3.0,
    )
    return SanaPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )


def _build_lcm(folder: Path) -> DiffusionPipeline:
    """The sd15 model with an LCM-distilled UNet shape (the guidance scale is an embedded input)."""
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler, UNet2DConditionModel

    sd = build_tiny_pipeline(folder / "tokenizer")
    unet = UNet2DConditionModel.from_config(sd.unet.config, time_cond_proj_dim=32)
    scheduler = LCMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        original_inference_steps=50,
        timestep_spacing="leading",
        steps_offset=1,
    )
    return LatentConsistencyModelPipeline(
        vae=sd.vae,
        text_encoder=sd.text_encoder,
        tokenizer=sd.tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _build_kandinsky3(folder: Path) -> DiffusionPipeline:
    from diffusers import DDPMScheduler, Kandinsky3Pipeline, Kandinsky3UNet, VQModel

    tokenizer = build_t5_tokenizer()
    text_encoder = _t5_encoder(len(tokenizer), d_model=32)
    unet = Kandinsky3UNet(
        in_channels=4,
        time_embedding_dim=8,
        groups=4,
        attention_head_dim=4,
        layers_per_block=2,  # its up blocks need at least 2 (the first widens, the last narrows)
        block_out_channels=(16, 32),
        cross_attention_dim=8,
        encoder_hid_dim=32,
    )
    # MoVQ: a 4-block VQ autoencoder (8x smaller latents) whose decoder is conditioned on the latents.
    movq = VQModel(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 32, 32, 32),  # the spatial norm has 32 groups
        down_block_types=("DownEncoderBlock2D",) * 3 + ("AttnDownEncoderBlock2D",),
        up_block_types=("AttnUpDecoderBlock2D",) + ("UpDecoderBlock2D",) * 3,
        layers_per_block=1,
        latent_channels=4,
        num_vq_embeddings=32,
        vq_embed_dim=4,
        norm_num_groups=8,
        norm_type="spatial",
        sample_size=64,
    )
    scheduler = DDPMScheduler(
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        thresholding=False,
        timestep_spacing="leading",
        steps_offset=1,
    )
    return Kandinsky3Pipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, unet=unet, scheduler=scheduler, movq=movq
    )


_BUILDERS: dict[str, Callable[[Path], DiffusionPipeline]] = {
    "sdxl": _build_sdxl,
    "sd3": _build_sd3,
    "flux": _build_flux,
    "pixart": _build_pixart,
    "sana": _build_sana,
    "lcm": _build_lcm,
    "kandinsky3": _build_kandinsky3,
}
