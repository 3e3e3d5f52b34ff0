"""Midjourney's multi-prompts (`cat:: dog::0.5`) as prompt embeddings, with compel.

Each part is encoded on its own and the parts are blended by their weights (compel's `Blend`, built from
the parts directly so compel's own syntax — `(word)1.2`, `word++` — never reinterprets what a member typed).
Parts with a negative weight, like `--no`, go into the negative prompt (Midjourney: `--no dog` is
`dog::-0.5`), blended the same way. Compel knows SD 1.x/2.x and SDXL text encoders (`WEIGHTED_FAMILIES`);
other families get the parts as one plain prompt (`plain_request`), and the member a note.
"""

from __future__ import annotations

from typing import Any

import torch

from pipeline.prompt import PromptPart, is_weighted, prompt_parts
from pipeline.request import GenerationRequest

# The weight `--no` text has among the negative parts, as in Midjourney.
NO_WEIGHT = 0.5


def needs_weighting(request: GenerationRequest) -> bool:
    return is_weighted(prompt_parts(request.prompt))


def split_parts(request: GenerationRequest) -> tuple[list[PromptPart], list[PromptPart]]:
    """The parts to draw, and the parts to keep out (`--no` among them) with positive weights."""
    parts = prompt_parts(request.prompt)
    positive = [part for part in parts if part.weight > 0]
    negative = [PromptPart(part.text, -part.weight) for part in parts if part.weight < 0]
    if request.negative_prompt:
        negative.insert(0, PromptPart(request.negative_prompt, NO_WEIGHT))
    return positive, negative


def plain_request(request: GenerationRequest) -> GenerationRequest:
    """`request` with its multi-prompt as one plain prompt and negative prompt, for a family compel does not know."""
    positive, negative = split_parts(request)
    return request.replace(
        prompt=", ".join(part.text for part in positive),
        negative_prompt=", ".join(part.text for part in negative),
    )


def weighted_embeddings(
    pipe: Any, family: str, request: GenerationRequest, *, guided: bool
) -> dict[str, torch.Tensor]:
    """The prompt embeddings of `request`'s multi-prompt for an SD 1.x/2.x (`family` "sd") or SDXL ("sdxl")
    pipeline, named as the pipeline's `__call__` takes them; the negative ones only when `guided`."""
    from compel import Compel, ReturnedEmbeddingsType

    positive, negative = split_parts(request)
    sdxl = family == "sdxl"
    kind = (
        ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
        if sdxl
        else ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED
    )
    encoders = [(pipe.tokenizer, pipe.text_encoder)]
    if sdxl:
        encoders.append((pipe.tokenizer_2, pipe.text_encoder_2))
    compels = [
        Compel(
            tokenizer=tokenizer,
            text_encoder=encoder,
            returned_embeddings_type=kind,
            dtype_for_device_getter=lambda device, encoder=encoder: encoder.dtype,
            truncate_long_prompts=True,  # 77 tokens a part, as the pipelines' own encoding
        )
        for tokenizer, encoder in encoders
        if encoder is not None
    ]

    def encode(parts: list[PromptPart]) -> tuple[torch.Tensor, torch.Tensor | None]:
        embeds = torch.cat([_blend(compel, parts) for compel in compels], dim=-1)
        pooled = None
        if sdxl:
            provider = compels[-1].conditioning_provider
            pooled = sum(
                weight * provider.get_pooled_embeddings([part.text])
                for part, weight in zip(parts, _normalized(parts), strict=True)
            )
        return embeds, pooled  # type: ignore[return-value]

    embeds, pooled = encode(positive)
    result = {"prompt_embeds": embeds}
    if pooled is not None:
        result["pooled_prompt_embeds"] = pooled
    if guided:
        if negative:
            negative_embeds, negative_pooled = encode(negative)
        elif sdxl and getattr(pipe.config, "force_zeros_for_empty_prompt", False):
            # What SDXL's own encode_prompt does for an empty negative prompt.
            negative_embeds, negative_pooled = torch.zeros_like(embeds), torch.zeros_like(pooled)  # type: ignore[arg-type]
        else:
            negative_embeds, negative_pooled = encode([PromptPart("", 1.0)])
        result["negative_prompt_embeds"] = negative_embeds
        if negative_pooled is not None:
            result["negative_pooled_prompt_embeds"] = negative_pooled
    return result


def _normalized(parts: list[PromptPart]) -> list[float]:
    total = sum(part.weight for part in parts)
    return [part.weight / total for part in parts]


def _blend(compel: Any, parts: list[PromptPart]) -> torch.Tensor:
    from compel.prompt_parser import Blend, Conjunction, FlattenedPrompt, Fragment

    blend = Blend([FlattenedPrompt([Fragment(part.text)]) for part in parts], [part.weight for part in parts])
    conditioning, _ = compel.build_conditioning_tensor_for_conjunction(Conjunction([blend]))
    return conditioning
