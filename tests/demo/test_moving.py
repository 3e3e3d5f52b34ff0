"""The moving scenes: frames drawn from the scene's geometry, captions that name the motion, held-out clips
kept out of training, and the still picture a text-to-video prompt starts from."""

import itertools
import random

import pytest

from pipeline.demo.checker import read
from pipeline.demo.evaluate_motion import held_out_cases, judge_clip, names_background
from pipeline.demo.moving import (
    DIRECTIONS,
    MOTION_WORDS,
    MOTIONS,
    evaluation_moving,
    first_frame_prompt,
    is_held_out_motion,
    motion_named,
    moving_caption,
    random_moving,
    random_start,
    render_frames,
    training_clip,
)


@pytest.mark.parametrize("motion", list(DIRECTIONS))
def test_a_shape_moving_one_way_is_drawn_further_that_way_in_every_frame(motion):
    clip = evaluation_moving(random.Random(3), motion, amount=0.5)
    readings = [read(frame).regions[0] for frame in render_frames(clip, 8)]
    axis, sign = DIRECTIONS[motion]
    along = [(r.x, r.y)[axis] * sign for r in readings]
    assert all(later >= earlier for earlier, later in itertools.pairwise(along))
    assert along[-1] - along[0] == pytest.approx(20, abs=1.5)  # 40 px * amount 0.5
    assert {r.color for r in readings} == {clip.shape.color}
    assert {r.shape for r in readings} == {clip.shape.kind}


def test_growing_shrinking_bouncing_and_spinning_frames_show_their_motion():
    rng = random.Random(5)
    for motion in ("growing", "shrinking", "bouncing", "spinning"):
        clip = evaluation_moving(rng, motion)
        verdict = judge_clip(clip, render_frames(clip, 8))
        assert verdict.motion and verdict.kept and verdict.background, motion


def test_a_still_clip_is_not_judged_as_moving():
    clip = evaluation_moving(random.Random(1), "right")
    still = render_frames(clip, 1) * 8
    assert judge_clip(clip, still).direction is False
    spinning = evaluation_moving(random.Random(1), "spinning")
    assert judge_clip(spinning, render_frames(spinning, 1) * 8).motion is False


def test_training_never_draws_a_held_out_clip_and_evaluation_only_those():
    rng = random.Random(0)
    for _ in range(300):
        assert not is_held_out_motion(training_clip(rng, random_start(rng)))
        assert not is_held_out_motion(random_moving(rng))
    assert all(is_held_out_motion(case.moving) for case in held_out_cases(27))
    assert {case.moving.motion for case in held_out_cases(27)} == set(MOTIONS)


def test_captions_name_their_motion_and_prompts_name_it_back():
    rng = random.Random(2)
    for _ in range(200):
        clip = random_moving(rng)
        text = moving_caption(clip, rng)
        named = motion_named(text)
        assert named == clip.motion or (named is None and clip.motion == "bouncing"), text
    assert all(
        motion_named(phrase) == motion for motion, phrases in MOTION_WORDS.items() for phrase in phrases
    )


@pytest.mark.parametrize(
    ("prompt", "still"),
    [
        ("a red circle moving right on a blue background", "a red circle on the left on a blue background"),
        ("a green star falling", "a green star at the top"),
        ("a yellow box rising, black backdrop", "a yellow box at the bottom, black backdrop"),
        (
            "a blue square on the left moving right, white backdrop",
            "a blue square on the left, white backdrop",
        ),
        ("a blue star growing on a red background", "a small blue star in the center on a red background"),
        ("a red circle on a blue background", "a red circle on a blue background"),
    ],
)
def test_a_text_to_video_prompt_starts_from_a_still_with_room_to_move(prompt, still):
    assert first_frame_prompt(prompt) == still


def test_a_prompt_naming_no_background_keeps_the_first_frames():
    clip = evaluation_moving(random.Random(4), "down")
    frames = render_frames(clip, 8)
    other = next(color for color in ("red", "blue") if color != clip.scene.background)
    asked_other = type(clip)(type(clip.scene)(other, clip.scene.shapes), clip.motion, clip.amount)
    assert judge_clip(asked_other, frames).background is False
    assert judge_clip(asked_other, frames, names_background=False).background is True
    assert names_background("a red circle moving left, blue backdrop")
    assert not names_background("a red circle moving left")
