"""Single-file checkpoints of the tiny SD 1.x and SDXL pipelines, in the original (LDM / Stability) layout
people download from model sites, so tests load them through `from_single_file` as users do.

The layout is the inverse of diffusers' own conversion (`diffusers.loaders.single_file_utils`): its tables
where it has them, the UNet and VAE block numbering here. A test loading the file back through diffusers
and comparing every weight checks this inverse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD_TEXT_PREFIX = "cond_stage_model.transformer."
SDXL_TEXT_PREFIX = "conditioner.embedders.0.transformer."
SDXL_OPEN_CLIP_PREFIX = "conditioner.embedders.1.model."

_UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1"}
_UNET_RESNET |= {"norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def save_single_file(pipe: Any, file: Path) -> Path:
    """Write `pipe` (a StableDiffusionPipeline or StableDiffusionXLPipeline) as one .safetensors checkpoint."""
    checkpoint = {UNET_PREFIX + key: value for key, value in _unet(pipe.unet).items()}
    checkpoint |= {VAE_PREFIX + key: value for key, value in _vae(pipe.vae).items()}
    if getattr(pipe, "text_encoder_2", None) is None:
        checkpoint |= _prefixed(pipe.text_encoder.state_dict(), SD_TEXT_PREFIX)
    else:
        checkpoint |= _prefixed(pipe.text_encoder.state_dict(), SDXL_TEXT_PREFIX)
        checkpoint |= {
            SDXL_OPEN_CLIP_PREFIX + key: value for key, value in _open_clip(pipe.text_encoder_2).items()
        }
    file.parent.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in checkpoint.items()}, str(file))
    return file


def _prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """CLIP weights under `prefix`, named as in original checkpoints (`text_model.…`, which newer
    transformers versions leave out of CLIPTextModel's own names)."""
    return {
        prefix + (key if key.startswith("text_model.") else f"text_model.{key}"): value
        for key, value in state.items()
        if not key.endswith("position_ids")
    }


def _renamed(state: dict[str, torch.Tensor], prefixes: list[tuple[str, str]], inner: dict[str, str]):
    """Each key with its longest matching diffusers prefix replaced; `inner` renames inside resnets."""
    renamed = {}
    for key, value in state.items():
        match = max((p for p in prefixes if key.startswith(p[0])), key=lambda p: len(p[0]), default=None)
        if match is None:
            raise KeyError(f"no original name for {key}")
        rest = key[len(match[0]) :]
        if ".resnets." in match[0] or match[0].startswith("mid_block.resnets"):
            head, _, tail = rest.rpartition(".")
            rest = f"{inner.get(head, head)}.{tail}"
        renamed[match[1] + rest] = value
    return renamed


def _unet(unet: Any) -> dict[str, torch.Tensor]:
    config = unet.config
    blocks, layers = len(config.block_out_channels), config.layers_per_block
    prefixes = [
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("add_embedding.linear_1.", "label_emb.0.0."),
        ("add_embedding.linear_2.", "label_emb.0.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
        ("mid_block.resnets.0.", "middle_block.0."),
        ("mid_block.attentions.0.", "middle_block.1."),
        ("mid_block.resnets.1.", "middle_block.2."),
    ]
    for i in range(blocks):
        for j in range(layers):
            number = i * (layers + 1) + j + 1
            prefixes += [
                (f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{number}.0."),
                (f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{number}.1."),
            ]
        if i < blocks - 1:
            prefixes.append(
                (f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op.")
            )
        attends = "CrossAttn" in config.up_block_types[i]
        for j in range(layers + 1):
            number = i * (layers + 1) + j
            prefixes += [
                (f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{number}.0."),
                (f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{number}.1."),
            ]
        if i < blocks - 1:
            last = i * (layers + 1) + layers
            prefixes.append(
                (f"up_blocks.{i}.upsamplers.0.conv.", f"output_blocks.{last}.{2 if attends else 1}.conv.")
            )
    return _renamed(unet.state_dict(), prefixes, _UNET_RESNET)


def _vae(vae: Any) -> dict[str, torch.Tensor]:
    blocks = len(vae.config.block_out_channels)
    same = ["encoder.conv_in.", "encoder.conv_out.", "decoder.conv_in.", "decoder.conv_out."]
    prefixes = [(p, p) for p in [*same, "quant_conv.", "post_quant_conv."]]
    for part in ("encoder", "decoder"):
        prefixes += [
            (f"{part}.conv_norm_out.", f"{part}.norm_out."),
            (f"{part}.mid_block.resnets.0.", f"{part}.mid.block_1."),
            (f"{part}.mid_block.resnets.1.", f"{part}.mid.block_2."),
            (f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1."),
        ]
    for i in range(blocks):
        up = blocks - 1 - i  # the decoder's blocks are numbered from the smallest size up
        prefixes += [
            (f"encoder.down_blocks.{i}.resnets.", f"encoder.down.{i}.block."),
            (f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."),
            (f"decoder.up_blocks.{i}.resnets.", f"decoder.up.{up}.block."),
            (f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{up}.upsample."),
        ]
    state = {}
    for key, value in vae.state_dict().items():
        if ".mid_block.attentions.0." in key:
            head, _, tail = key.rpartition(".")
            stem, _, layer = head.partition(".mid_block.attentions.0.")
            key = f"{stem}.mid_block.attentions.0.{_VAE_ATTENTION[layer]}.{tail}"
            if value.ndim == 2:  # the original attention uses 1x1 convolutions
                value = value[:, :, None, None]
        elif ".resnets." in key and ".conv_shortcut." in key:
            key = key.replace(".conv_shortcut.", ".nin_shortcut.")
        state[key] = value
    renamed = {}
    for key, value in state.items():
        match = max((p for p in prefixes if key.startswith(p[0])), key=lambda p: len(p[0]))
        renamed[match[1] + key[len(match[0]) :]] = value
    return renamed


def _open_clip(encoder: Any) -> dict[str, torch.Tensor]:
    """A CLIPTextModelWithProjection's weights in OpenCLIP's layout (SDXL's second text encoder)."""
    state = encoder.state_dict()
    out = {
        "positional_embedding": state["text_model.embeddings.position_embedding.weight"],
        "token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
        "ln_final.weight": state["text_model.final_layer_norm.weight"],
        "ln_final.bias": state["text_model.final_layer_norm.bias"],
        "text_projection": state["text_projection.weight"].T,
    }
    for i in range(encoder.config.num_hidden_layers):
        layer, block = f"text_model.encoder.layers.{i}.", f"transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{block}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{layer}self_attn.{p}_proj.{kind}"] for p in ("q", "k", "v")]
            )
            out[f"{block}attn.out_proj.{kind}"] = state[f"{layer}self_attn.out_proj.{kind}"]
            out[f"{block}ln_1.{kind}"] = state[f"{layer}layer_norm1.{kind}"]
            out[f"{block}ln_2.{kind}"] = state[f"{layer}layer_norm2.{kind}"]
            out[f"{block}mlp.c_fc.{kind}"] = state[f"{layer}mlp.fc1.{kind}"]
            out[f"{block}mlp.c_proj.{kind}"] = state[f"{layer}mlp.fc2.{kind}"]
    return out
