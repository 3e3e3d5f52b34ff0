"""The procedural dataset: deterministic, captioned in the model's vocabulary, held-out scenes kept out."""

import random

import numpy as np
from transformers import CLIPTokenizer

from pipeline.demo.scenes import (
    COLOR_WORDS,
    SHAPE_WORDS,
    caption,
    is_held_out,
    random_scene,
    render,
    render_array,
    vocabulary,
)
from pipeline.demo.tokenizer import build_tokenizer, save_tokenizer


def draw(seed: int, count: int = 20):
    rng = random.Random(seed)
    scenes = [random_scene(rng) for _ in range(count)]
    return scenes, [caption(scene, rng) for scene in scenes], render_array(scenes)


def test_same_seed_gives_the_same_scenes_captions_and_pixels():
    scenes, captions, pixels = draw(7)
    again_scenes, again_captions, again_pixels = draw(7)
    assert scenes == again_scenes and captions == again_captions
    assert np.array_equal(pixels, again_pixels)


def test_another_seed_gives_other_scenes():
    scenes, captions, pixels = draw(7)
    other_scenes, other_captions, other_pixels = draw(8)
    assert scenes != other_scenes and captions != other_captions
    assert not np.array_equal(pixels, other_pixels)


def test_images_are_64px_rgb_in_minus_one_to_one():
    _, _, pixels = draw(1, count=4)
    assert pixels.shape == (4, 3, 64, 64) and pixels.dtype == np.float32
    assert pixels.min() >= -1 and pixels.max() <= 1


def test_the_background_and_shape_colours_are_drawn():
    scene = random_scene(random.Random(3))
    image = np.asarray(render(scene))
    from pipeline.demo.scenes import PALETTE

    assert tuple(image[0, 0]) == PALETTE[scene.background]
    shape = scene.shapes[0]
    assert tuple(image[round(shape.y), round(shape.x)]) == PALETTE[shape.color] or shape.kind == "ring"


def test_training_scenes_never_hold_held_out_combinations_and_eval_scenes_only_those():
    rng = random.Random(0)
    assert not any(is_held_out(random_scene(rng)) for _ in range(500))
    assert all(is_held_out(random_scene(rng, held_out=True)) for _ in range(100))


def test_captions_vary_and_use_synonyms():
    rng = random.Random(0)
    texts = [caption(random_scene(rng), rng) for _ in range(300)]
    words = {word for text in texts for word in text.replace(",", " ").split()}
    assert len(set(texts)) == len(texts)
    for synonym in ("crimson", "azure", "emerald", "golden", "violet", "ball", "box", "donut"):
        assert synonym in words
    assert any(" and " in text for text in texts) and any(" and " not in text for text in texts)


def test_every_caption_word_is_one_token_and_the_tokenizer_reloads(tmp_path):
    tokenizer = build_tokenizer(vocabulary())
    for word in vocabulary():
        assert len(tokenizer(word, add_special_tokens=False).input_ids) == 1, word
    save_tokenizer(tokenizer, tmp_path)
    reloaded = CLIPTokenizer.from_pretrained(tmp_path)
    rng = random.Random(4)
    text = caption(random_scene(rng), rng)
    assert reloaded(text).input_ids == tokenizer(text).input_ids
    assert len(tokenizer(text).input_ids) == len(text.replace(",", " , ").split()) + 2


def test_unknown_words_fall_apart_into_letters_instead_of_failing():
    tokenizer = build_tokenizer(vocabulary())
    ids = tokenizer("zebra", add_special_tokens=False).input_ids
    assert len(ids) > 1 and tokenizer.unk_token_id not in ids


def test_synonym_tables_name_every_colour_and_shape_first_by_its_own_name():
    for table in (COLOR_WORDS, SHAPE_WORDS):
        for name, words in table.items():
            assert words[0] == name
