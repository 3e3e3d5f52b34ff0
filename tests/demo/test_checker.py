"""The pixel-only checker reads the dataset's own drawings right, and notices wrong ones."""

import dataclasses
import random

from PIL import Image

from pipeline.demo.checker import judge, read
from pipeline.demo.evaluate import held_out_cases, summarize
from pipeline.demo.scenes import PALETTE, SHAPES, Scene, Shape, random_scene, render


def test_renders_of_random_scenes_are_read_correctly():
    rng = random.Random(11)
    checks = []
    for index in range(120):
        scene = random_scene(rng, held_out=index % 2 == 0)
        verdict = judge(scene, render(scene))
        checks += [value for value in dataclasses.asdict(verdict).values() if value is not None]
    assert len(checks) > 300
    assert sum(checks) / len(checks) >= 0.99


def test_each_shape_kind_is_told_apart_at_both_sizes():
    for kind in SHAPES:
        for radius in (8.5, 18.0):
            scene = Scene("blue", (Shape(kind, "yellow", 32, 32, radius, "center"),))
            assert read(render(scene)).regions[0].shape == kind


def test_wrong_colour_shape_and_place_are_caught():
    asked = Scene("white", (Shape("star", "red", 18, 32, 12, "left"),))
    drawn = Scene("white", (Shape("circle", "blue", 46, 32, 12, "right"),))
    verdict = judge(asked, render(drawn))
    assert verdict.background is True
    assert (verdict.color, verdict.shape, verdict.position) == (False, False, False)


def test_a_plain_image_has_no_object_and_fails_everything_but_the_background():
    asked = Scene("green", (Shape("square", "orange", 32, 32, 12, "center"),))
    verdict = judge(asked, Image.new("RGB", (64, 64), PALETTE["green"]))
    assert verdict.background is True and verdict.color is False and verdict.shape is False


def test_a_blob_filling_the_image_is_no_shape():
    scene = Scene("black", (Shape("square", "yellow", 32, 32, 30),))
    assert read(render(scene)).regions[0].shape == "unclear"


def test_two_objects_need_each_colour_in_its_own_half():
    asked = Scene(
        "black", (Shape("ring", "red", 16, 32, 10, "left"), Shape("star", "white", 48, 32, 10, "right"))
    )
    swapped = Scene(
        "black", (Shape("ring", "white", 16, 32, 10, "left"), Shape("star", "red", 48, 32, 10, "right"))
    )
    assert judge(asked, render(asked)).both_colors is True
    assert judge(asked, render(swapped)).both_colors is False


def test_held_out_prompts_are_stable_distinct_and_include_synonyms_and_pairs():
    cases = held_out_cases(60)
    assert cases == held_out_cases(60)
    assert len({case.prompt for case in cases}) == 60
    assert sum(case.synonyms for case in cases) == 20
    assert any(case.scene.is_pair for case in cases) and any(not case.scene.is_pair for case in cases)


def test_summary_counts_only_what_each_prompt_asks():
    cases = held_out_cases(6)
    verdicts = [(case, judge(case.scene, render(case.scene))) for case in cases]
    summary = summarize(verdicts)
    assert summary["all/background"] == {"rate": 1.0, "count": 6}
    singles = sum(not case.scene.is_pair for case in cases)
    assert summary["all/color"]["count"] == singles
