"""The prompt syntax users type after /imagine."""

import dataclasses
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import RequestError
from pipeline.families import UNKNOWN_FAMILY, ModelFamily
from pipeline.prompt import KNOWN_FLAGS, PromptDefaults, parse_prompt, stylize_to_guidance
from pipeline.request import Limits, Mode


def sized(native_size: int) -> ModelFamily:
    return dataclasses.replace(UNKNOWN_FAMILY, native_size=native_size)


def parse(text, native_size=512, **kwargs):
    """`parse_prompt` for a model of `native_size` (or a function of the --model name giving it)."""
    if callable(native_size):
        kwargs.setdefault("family", lambda model: sized(native_size(model)))
    else:
        kwargs.setdefault("family", sized(native_size))
    kwargs.setdefault("seed_source", random.Random(1))
    return parse_prompt(text, **kwargs)


def test_every_flag_lands_in_the_request():
    request = parse(
        "a lighthouse at dusk --ar 16:9 --seed 7 --no cars, boats --steps 30 --stylize 200 --chaos 40"
    )
    assert request.prompt == "a lighthouse at dusk"
    assert (request.width, request.height) == (680, 384)
    assert request.seed == 7
    assert request.seeds == [7, 8, 9, 10]
    assert request.negative_prompt == "cars, boats"
    assert request.steps == 30
    assert request.guidance == stylize_to_guidance(200)
    assert request.chaos == 40
    assert request.mode is Mode.TXT2IMG
    assert request.model is None


def test_plain_prompt_uses_defaults_and_the_native_square():
    request = parse("a cat", native_size=64, defaults=PromptDefaults(steps=12, stylize=0, chaos=5))
    assert (request.width, request.height, request.steps, request.chaos) == (64, 64, 12, 5)
    assert request.guidance == stylize_to_guidance(0)
    assert request.negative_prompt == ""


def test_aliases_and_em_dash_are_accepted():
    request = parse("a cat —aspect 2:3 --s 50 --c 10")
    assert request.height > request.width
    assert request.guidance == stylize_to_guidance(50)
    assert request.chaos == 10


def test_missing_seed_comes_from_the_seed_source():
    assert parse("a cat", seed_source=random.Random(5)).seed == random.Random(5).randrange(2**32)
    assert (
        parse("a cat", seed_source=random.Random(5)).seed != parse("a cat", seed_source=random.Random(6)).seed
    )


def test_model_flag_is_checked_against_the_available_models():
    sizes = {None: 512, "tiny": 64}
    request = parse("a cat --model tiny --ar 1:1", native_size=sizes.get, models=["tiny"])
    assert request.model == "tiny"
    assert (request.width, request.height) == (64, 64)
    with pytest.raises(RequestError, match=r"--model 'huge' is not available; choose one of: tiny"):
        parse("a cat --model huge", models=["tiny"])


def test_prose_dashes_are_not_flags():
    assert parse("state-of-the-art cat — sleeping").prompt == "state-of-the-art cat — sleeping"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a cat --ar wide", "--ar needs W:H such as 16:9 (got 'wide')"),
        ("a cat --ar 16:0", "--ar needs two positive whole numbers"),
        ("a cat --ar 10:1", "--ar must be between 1:4 and 4:1 (got '10:1')"),
        ("a cat --seed abc", "--seed needs a whole number from 0 to 4294967295 (got 'abc')"),
        ("a cat --seed -3", "--seed must be between 0 and 4294967295 (got -3)"),
        ("a cat --seed 4294967296", "--seed must be between 0 and 4294967295"),
        ("a cat --seed 1 2", "--seed takes one value (got '1 2')"),
        ("a cat --steps 0", "--steps must be between 1 and 100 (got 0)"),
        ("a cat --steps 101", "--steps must be between 1 and 100 (got 101)"),
        ("a cat --steps many", "--steps needs a whole number"),
        ("a cat --stylize 1001", "--stylize must be between 0 and 1000 (got 1001)"),
        ("a cat --s x", "--s needs a whole number from 0 to 1000 (got 'x')"),
        ("a cat --chaos 101", "--chaos must be between 0 and 100 (got 101)"),
        ("a cat --c -1", "--c must be between 0 and 100 (got -1)"),
        ("a cat --seed", "--seed needs a value, such as --seed 7"),
        ("a cat --no", "--no needs a value, such as --no cars"),
        ("a cat --no --seed 3", "--no needs a value"),
        ("a cat --seed 1 --seed 2", "--seed is given twice"),
        ("a cat --s 1 --stylize 2", "--stylize is given twice"),
        ("a cat --model a b", "--model takes one value"),
        ("a cat --v 6", "Unknown flag --v; known flags: " + KNOWN_FLAGS),
        ("a cat -- 6", "Unknown flag '--' without a name"),
        ("--seed 3", "The prompt is empty"),
    ],
)
def test_each_bad_flag_names_itself(text, message):
    with pytest.raises(RequestError) as error:
        parse(text)
    assert message in str(error.value)


def test_limits_apply_to_steps_and_size():
    with pytest.raises(RequestError, match="--steps must be between 1 and 20"):
        parse("a cat --steps 30", limits=Limits(max_steps=20))
    with pytest.raises(RequestError, match="pixels"):
        parse("a cat --ar 16:9", native_size=1024, limits=Limits(max_pixels=512 * 512))


def test_stylize_maps_to_guidance_monotonically_around_seven_and_a_half():
    assert stylize_to_guidance(100) == 7.5
    values = [stylize_to_guidance(s) for s in range(0, 1001, 10)]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert 1 <= values[0] and values[-1] < 15


@given(st.text(max_size=200))
def test_any_text_either_parses_or_raises_a_request_error(text):
    try:
        request = parse(text)
    except RequestError as error:
        assert str(error)
    else:
        assert "--" not in request.prompt.split()


@given(
    description=st.from_regex(r"[a-z][a-z ]{0,30}", fullmatch=True),
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 100),
    chaos=st.integers(0, 100),
    aspect=st.tuples(st.integers(1, 4), st.integers(1, 4)),
)
def test_valid_flags_round_trip(description, seed, steps, chaos, aspect):
    text = f"{description} --seed {seed} --steps {steps} --chaos {chaos} --ar {aspect[0]}:{aspect[1]}"
    request = parse(text, native_size=64)
    assert (request.prompt, request.seed, request.steps, request.chaos) == (
        description.strip(),
        seed,
        steps,
        chaos,
    )
    assert request.width % 8 == 0 and request.height % 8 == 0
    assert (request.width >= request.height) == (aspect[0] >= aspect[1]) or aspect[0] == aspect[1]


def test_a_models_own_defaults_fill_steps_and_scale_stylize_into_its_guidance():
    flux_dev = dataclasses.replace(UNKNOWN_FAMILY, default_steps=28, default_guidance=3.5)
    request = parse("a cat", family=flux_dev)
    assert (request.steps, request.guidance) == (28, 3.5)
    assert parse("a cat --s 200", family=flux_dev).guidance == round(3.5 * stylize_to_guidance(200) / 7.5, 2)
    assert parse("a cat --steps 9", family=flux_dev).steps == 9
    distilled = dataclasses.replace(UNKNOWN_FAMILY, default_steps=4, default_guidance=0.0)
    assert (parse("a cat --s 900", family=distilled).guidance, parse("a cat", family=distilled).steps) == (
        0.0,
        4,
    )
    # MODEL_STEPS / MODEL_GUIDANCE win over the family's own.
    overridden = parse("a cat", family=flux_dev, defaults=PromptDefaults(steps=12, guidance=5.0))
    assert (overridden.steps, overridden.guidance) == (12, 5.0)
