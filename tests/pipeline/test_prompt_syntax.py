"""The prompt syntax that makes several jobs or changes how a prompt is drawn: --repeat, {a, b} permutations,
multi-prompt weights (`cat:: dog::0.5`), --tile and --q."""

import dataclasses
import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import RequestError
from pipeline.families import UNKNOWN_FAMILY
from pipeline.prompt import (
    KNOWN_FLAGS,
    PromptDefaults,
    PromptPart,
    expand_permutations,
    is_weighted,
    parse_prompt,
    parse_prompts,
    prompt_parts,
)
from pipeline.request import Limits, can_share_call

FAMILY = dataclasses.replace(UNKNOWN_FAMILY, default_steps=20)


def parse_all(text, **kwargs):
    kwargs.setdefault("family", FAMILY)
    kwargs.setdefault("seed_source", random.Random(1))
    return parse_prompts(text, **kwargs)


# ---- permutations


def test_each_option_makes_a_job_and_several_braces_multiply():
    assert expand_permutations("a {red, blue} bird") == ["a red bird", "a blue bird"]
    assert expand_permutations("a {red, blue} {bird, fish}") == [
        "a red bird",
        "a red fish",
        "a blue bird",
        "a blue fish",
    ]


def test_nested_braces_expand_inside_their_option():
    assert expand_permutations("a {big {red, blue}, small} bird", 10) == [
        "a big red bird",
        "a big blue bird",
        "a small bird",
    ]


def test_escaped_braces_and_commas_are_the_characters_themselves():
    assert expand_permutations(r"a \{logo\} in {red\, white, blue}") == [
        "a {logo} in red, white",
        "a {logo} in blue",
    ]


def test_an_empty_option_leaves_no_double_space():
    assert expand_permutations("a {, big} cat") == ["a cat", "a big cat"]


def test_text_without_braces_is_untouched():
    assert expand_permutations("a  cat, sleeping") == ["a  cat, sleeping"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a {red, blue bird", "A { in the prompt has no matching }; write \\{ for the brace itself."),
        ("a red} bird", "A } in the prompt has no matching {; write \\} for the brace itself."),
        (
            "{a,b,c} {d,e}",
            "The {…} options in this prompt make 6 combinations; one prompt may make at most 4 jobs.",
        ),
    ],
)
def test_bad_braces_and_too_many_combinations_are_refused(text, message):
    with pytest.raises(RequestError) as error:
        expand_permutations(text)
    assert str(error.value) == message


def test_a_huge_number_of_combinations_is_counted_not_made():
    with pytest.raises(RequestError, match="make 1,048,576 combinations"):
        expand_permutations("{a,b} " * 20)


@given(st.lists(st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True), min_size=1, max_size=3), max_size=3))
def test_permutations_are_the_product_of_the_options_in_order(choices):
    text = " ".join(["start", *("{" + ", ".join(options) + "}" for options in choices), "end"])
    expected = [" ".join(["start", *combination, "end"]) for combination in itertools.product(*choices)]
    assert expand_permutations(text, max_jobs=100) == expected


@given(st.text(max_size=80))
def test_any_text_expands_or_raises_a_request_error(text):
    try:
        texts = expand_permutations(text, max_jobs=8)
    except RequestError:
        return
    assert 1 <= len(texts) <= 8


def test_permutations_reach_the_flags_too():
    requests = parse_all("a cat --ar {1:1, 2:1}")
    assert [(r.width, r.height) for r in requests] == [(512, 512), (720, 360)]


# ---- --repeat


def test_repeat_makes_that_many_jobs_each_with_its_own_seed():
    requests = parse_all("a cat --repeat 3")
    assert len(requests) == 3
    assert {r.prompt for r in requests} == {"a cat"}
    assert len({r.seed for r in requests}) == 3


def test_repeat_with_a_seed_continues_the_seeds_so_every_grid_is_new_and_reproducible():
    requests = parse_all("a cat --seed 10 --r 3")
    assert [r.seeds for r in requests] == [[10, 11, 12, 13], [14, 15, 16, 17], [18, 19, 20, 21]]


def test_repeat_multiplies_permutations_and_the_cap_counts_both():
    requests = parse_all("a {red, blue} cat --repeat 2 --seed 1")
    assert [(r.prompt, r.seed) for r in requests] == [
        ("a red cat", 1),
        ("a red cat", 5),
        ("a blue cat", 1),
        ("a blue cat", 5),
    ]
    with pytest.raises(RequestError) as error:
        parse_all("a {red, blue, green} cat --repeat 2", max_jobs=5)
    assert (
        str(error.value)
        == "This prompt makes 6 jobs (3 permutations x --repeat); one prompt may make at most 5."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a cat --repeat 5", "--repeat must be between 1 and 4 (got 5)"),
        ("a cat --repeat 0", "--repeat must be between 1 and 4 (got 0)"),
        ("a cat --repeat lots", "--repeat needs a whole number from 1 to 4 (got 'lots')"),
        ("a cat --repeat", "--repeat needs a value, such as --repeat 3"),
    ],
)
def test_bad_repeats_name_the_flag(text, message):
    with pytest.raises(RequestError) as error:
        parse_all(text)
    assert message in str(error.value)


def test_a_single_job_parse_reads_repeat_as_one_job():
    assert parse_prompt("a cat --repeat 2", family=FAMILY).prompt == "a cat"


# ---- --tile and --q


def test_tile_is_a_flag_without_a_value():
    request = parse_prompt("a tiled floor --tile --ar 2:1", family=FAMILY)
    assert request.tile and request.width == 2 * request.height
    assert parse_prompt("a tiled floor --ar 2:1 --tile", family=FAMILY).tile
    assert not parse_prompt("a tiled floor", family=FAMILY).tile


def test_tile_with_a_value_says_it_takes_none():
    with pytest.raises(RequestError) as error:
        parse_prompt("a floor --tile marble", family=FAMILY)
    assert str(error.value) == "--tile takes no value (got 'marble'); put the description before the flags."


def test_tiled_and_plain_requests_never_share_a_pipeline_call():
    tiled = parse_prompt("a floor --tile --seed 1", family=FAMILY)
    assert not can_share_call(tiled, tiled.replace(tile=False))
    assert can_share_call(tiled, tiled.replace(seed=9))


@pytest.mark.parametrize(("quality", "steps"), [(".25", 5), ("0.5", 10), ("1", 20), ("2", 40)])
def test_quality_scales_the_models_steps(quality, steps):
    request = parse_prompt(f"a cat --q {quality}", family=FAMILY)
    assert request.steps == steps
    assert request.quality == float(quality)


def test_quality_scales_steps_given_with_steps_or_saved_defaults():
    assert parse_prompt("a cat --steps 30 --quality .5", family=FAMILY).steps == 15
    assert parse_prompt("a cat --q 2", family=FAMILY, defaults=PromptDefaults(steps=8)).steps == 16
    assert parse_prompt("a cat --q .25 --steps 2", family=FAMILY).steps == 1  # never below one step


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a cat --q 3", "--q takes .25, .5, 1 or 2 (got '3')."),
        ("a cat --quality high", "--quality takes .25, .5, 1 or 2 (got 'high')."),
        ("a cat --q", "--q needs a value, such as --q .5 (one of .25, .5, 1, 2)"),
        (
            "a cat --q 2 --steps 60",
            "--q 2 makes 120 steps; the limit is 100. Ask for fewer --steps or a lower --q.",
        ),
    ],
)
def test_bad_quality_names_the_flag(text, message):
    with pytest.raises(RequestError) as error:
        parse_prompt(text, family=FAMILY, limits=Limits())
    assert message in str(error.value)


def test_the_new_flags_are_listed_among_the_known_ones():
    with pytest.raises(RequestError) as error:
        parse_prompt("a cat --tiles", family=FAMILY)
    assert KNOWN_FLAGS in str(error.value)
    for flag in ("--q (--quality)", "--repeat (--r)", "--tile"):
        assert flag in KNOWN_FLAGS


# ---- multi-prompt weights


def test_multi_prompt_parts_and_their_weights():
    assert prompt_parts("cat:: dog::0.5") == [PromptPart("cat", 1.0), PromptPart("dog", 0.5)]
    assert prompt_parts("space ship::2 stars::-.5 night sky") == [
        PromptPart("space ship", 2.0),
        PromptPart("stars", -0.5),
        PromptPart("night sky", 1.0),
    ]
    assert prompt_parts("a cat") == [PromptPart("a cat", 1.0)]
    assert not is_weighted(prompt_parts("a cat"))
    assert is_weighted(prompt_parts("a cat::2"))
    assert is_weighted(prompt_parts("hot:: dog"))


def test_a_multi_prompt_is_kept_as_typed_in_the_request():
    assert parse_prompt("cat:: dog::0.5 --seed 3", family=FAMILY).prompt == "cat:: dog::0.5"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dog::-1", "The weights of a multi-prompt must add up to more than 0 (got -1)"),
        ("cat::1 dog::-1", "must add up to more than 0 (got 0)"),
        ("::2 cat", "A part of the multi-prompt before '::2' is empty."),
        ("cat:: ::0.5 dog", "A part of the multi-prompt before '::0.5' is empty."),
    ],
)
def test_bad_multi_prompts_are_refused_before_anything_runs(text, message):
    with pytest.raises(RequestError) as error:
        parse_prompt(text, family=FAMILY)
    assert message in str(error.value)
