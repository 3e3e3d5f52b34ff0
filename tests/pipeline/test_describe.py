"""/describe's describers: the demo scene checker on held-out flat-colour pictures, and a transformers
image-to-text model (a tiny random one built from configs)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from pipeline.demo.scenes import Scene, Shape, render
from pipeline.describe import PROMPTS, SceneDescriber, distinct_prompts, open_describer
from pipeline.errors import ModelLoadError
from testkit.pictures import held_out_pictures, names_scene
from testkit.tiny_captioner import WORDS, save_tiny_captioner


def test_the_scene_describer_names_colour_shape_and_background_of_held_out_pictures() -> None:
    describer = SceneDescriber()
    right, total = Counter(), Counter()
    for picture in held_out_pictures(per_variant=25, seed=1):
        right[picture.variant] += names_scene(describer.describe(picture.image)[0], picture.scene)
        total[picture.variant] += 1
    assert set(total) == {"render", "size", "radius", "shade"}
    for variant in total:
        assert right[variant] / total[variant] >= 0.9, (variant, right[variant], total[variant])


def test_four_different_prompts_in_the_demo_model_language() -> None:
    one = Scene("black", (Shape("star", "yellow", 46, 32, 12, "right"),))
    assert SceneDescriber().describe(render(one, size=96)) == [
        "a yellow star on a black background",
        "a yellow star on the right on a black background",
        "a black backdrop with a golden star",
        "yellow star on the right, black backdrop",
    ]
    pair = Scene(
        "white", (Shape("ring", "red", 46, 32, 9, "right"), Shape("square", "blue", 18, 32, 9, "left"))
    )
    first = SceneDescriber().describe(render(pair))[0]
    assert first == "a blue square on the left and a red ring on the right on a white background"
    empty = SceneDescriber().describe(Image.new("RGB", (64, 64), (30, 165, 60)))
    assert empty[0] == "a plain green background" and len(set(empty)) == PROMPTS


def test_captions_become_four_distinct_prompts() -> None:
    assert distinct_prompts(["A cat.", "a cat", "", "a dog on a mat"]) == [
        "A cat",
        "a dog on a mat",
        "A cat, detailed",
        "a photo of A cat",
    ]
    assert distinct_prompts([]) == [
        "an image",
        "an image, detailed",
        "a photo of an image",
        "an image, soft light",
    ]


def test_a_transformers_captioner_named_by_describer_gives_four_prompts(tmp_path: Path) -> None:
    describer = open_describer(str(save_tiny_captioner(tmp_path / "captioner")))
    prompts = describer.describe(Image.new("RGB", (50, 40), (200, 0, 0)))
    assert len(prompts) == PROMPTS == len(set(prompts))
    assert all(set(prompt.split()) <= set(WORDS) for prompt in prompts[:1]), prompts
    assert describer.name == str(tmp_path / "captioner")


def test_a_describer_that_cannot_be_loaded_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as failed:
        open_describer(str(tmp_path / "no-such-model"))
    message = str(failed.value)
    assert message.startswith(
        f"DESCRIBER={tmp_path / 'no-such-model'}: the image-to-text model cannot be loaded"
    )
    assert "\n" not in message
