"""Every tiny model family loads from its saved folder as a user's model would, at its real latent layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from testkit.families import (
    FAMILIES,
    TINY_FAMILIES,
    TinyFamily,
    build_gemma_tokenizer,
    build_t5_tokenizer,
)

# Eight families built, saved, loaded and run twice: about 15 s on a 2-core CPU, half of it importing
# diffusers and transformers.
pytestmark = pytest.mark.slow

PROMPT = "a red circle on a blue square"


@pytest.fixture(scope="session")
def family_pipe(family_dir):
    from diffusers import AutoPipelineForText2Image

    family, folder = family_dir
    pipe = AutoPipelineForText2Image.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return family, pipe


def size_for(family: TinyFamily) -> tuple[int, int]:
    """A small non-square (width, height) that the family generates exactly."""
    unit = family.size_multiple
    return -(-96 // unit) * unit, -(-64 // unit) * unit


def autoencoder(pipe):
    return pipe.components.get("vae") or pipe.components["movq"]


def denoiser(pipe):
    return pipe.components.get("transformer") or pipe.components["unet"]


def encoded(vae, width: int, height: int) -> torch.Tensor:
    """The latents of a blank image, whichever kind of autoencoder (KL, DC or VQ) this is."""
    with torch.no_grad():
        output = vae.encode(torch.zeros(1, 3, height, width))
    if hasattr(output, "latent_dist"):
        return output.latent_dist.mode()
    return output.latent if hasattr(output, "latent") else output.latents


def generate(pipe, family: TinyFamily, seed: int) -> list:
    width, height = size_for(family)
    generator = torch.Generator().manual_seed(seed)
    return pipe(PROMPT, num_inference_steps=2, width=width, height=height, generator=generator).images


def test_the_facts_table_names_every_family_once():
    assert tuple(TINY_FAMILIES) == FAMILIES
    assert all(name == family.name for name, family in TINY_FAMILIES.items())
    assert len({family.pipeline_class_name for family in TINY_FAMILIES.values()}) == len(FAMILIES)


def test_the_folder_loads_as_the_family_pipeline(family_dir, family_pipe):
    from diffusers import DiffusionPipeline

    family, folder = family_dir
    _, pipe = family_pipe
    assert type(pipe).__name__ == family.pipeline_class_name
    # DiffusionPipeline.from_pretrained (which the auto pipeline calls) picks the class the folder names.
    assert DiffusionPipeline.load_config(folder)["_class_name"] == family.pipeline_class_name


def test_the_latent_layout_is_the_real_family_s(family_pipe):
    family, pipe = family_pipe
    vae, model = autoencoder(pipe), denoiser(pipe)
    if hasattr(pipe, "vae_scale_factor"):  # Kandinsky 3 keeps its scale inside the call
        assert pipe.vae_scale_factor == family.vae_scale
    assert vae.config.latent_channels == family.latent_channels
    width, height = size_for(family)
    latents = encoded(vae, width, height)
    assert latents.shape == (1, family.latent_channels, height // family.vae_scale, width // family.vae_scale)
    tokens_per_patch = family.patch_size**2 if family.packed else 1
    assert model.config.in_channels == family.latent_channels * tokens_per_patch
    if "patch_size" in model.config and not family.packed:
        assert model.config.patch_size == family.patch_size


def test_a_two_step_run_gives_the_requested_size_the_same_for_the_same_seed(family_pipe):
    family, pipe = family_pipe
    first, again = generate(pipe, family, seed=7), generate(pipe, family, seed=7)
    assert [image.size for image in first] == [size_for(family)]
    assert np.array_equal(np.asarray(first[0]), np.asarray(again[0]))


@pytest.mark.parametrize("build", [build_t5_tokenizer, build_gemma_tokenizer])
def test_the_tokenizers_built_in_code_reload_unchanged(build, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = build()
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(reloaded) is type(tokenizer)
    text = "A Red circle, 3 times! (ü)"
    arguments = {"padding": "max_length", "max_length": 40, "truncation": True}
    assert reloaded(text, **arguments).input_ids == tokenizer(text, **arguments).input_ids
    assert tokenizer.unk_token_id in tokenizer(text).input_ids  # "(", ")" and "ü" are not in the vocabulary
