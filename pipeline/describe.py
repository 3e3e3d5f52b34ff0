"""/describe: four candidate prompts for a picture.

Two describers share one small interface. `SceneDescriber` reads a flat-colour picture with the demo model's
own scene checker (`pipeline.demo.checker`: background, each object's colour, shape and place) and words what
it found in the demo model's prompt language, so Kaika describes offline out of the box. `CaptionDescriber`
runs a transformers image-to-text model (`DESCRIBER`: a hub id or a folder) and keeps its four best captions.
Both are plain, blocking calls: run them off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from pipeline.demo.checker import Reading, read
from pipeline.demo.scenes import COLOR_WORDS, IMAGE_SIZE, POSITION_PHRASES, SHAPE_WORDS
from pipeline.errors import ModelLoadError

PROMPTS = 4  # candidates a /describe offers, as Midjourney's


class Describer(Protocol):
    name: str

    def describe(self, image: Image.Image) -> list[str]:
        """`PROMPTS` different prompts that could have made `image`, the likeliest first."""
        ...


@dataclass(frozen=True)
class SceneDescriber:
    """Describes flat-colour pictures (the demo model's scenes, and drawings like them) from their pixels."""

    name: str = "scene checker"

    def describe(self, image: Image.Image) -> list[str]:
        # The checker's anchors and shape limits are set for the demo's square images: read a square view.
        square = image.convert("RGB").resize((max(IMAGE_SIZE, min(image.size)),) * 2, Image.Resampling.BOX)
        return scene_prompts(read(square))


def scene_prompts(reading: Reading) -> list[str]:
    """Four ways to say what the scene checker read, plain words first, in the phrases the demo model was
    trained on (`pipeline.demo.scenes`)."""
    background = reading.background
    regions = [region for region in reading.regions if region.shape != "unclear"][:2] or list(
        reading.regions[:1]
    )

    def color(name: str, synonym: bool) -> str:
        words = COLOR_WORDS[name]
        return words[1] if synonym and len(words) > 1 else words[0]

    def shape(kind: str, synonym: bool) -> str:
        words = SHAPE_WORDS.get(kind, ("shape",))
        return words[1] if synonym and len(words) > 1 else words[0]

    def place(position: str) -> str:
        return POSITION_PHRASES[position][0]

    if not regions:
        return [
            f"a plain {background} background",
            f"an empty {color(background, True)} backdrop",
            f"a {background} backdrop",
            f"{color(background, True)}, nothing else",
        ]
    if len(regions) == 1:
        (one,) = regions
        return [
            f"a {one.color} {shape(one.shape, False)} on a {background} background",
            f"a {one.color} {shape(one.shape, False)} {place(one.position)} on a {background} background",
            f"a {color(background, True)} backdrop with a {color(one.color, True)} {shape(one.shape, True)}",
            f"{one.color} {shape(one.shape, True)} {place(one.position)}, {background} backdrop",
        ]
    first, second = sorted(regions, key=lambda region: region.x + region.y)  # left/top one first
    return [
        f"a {first.color} {shape(first.shape, False)} {place(first.position)} and a {second.color} "
        f"{shape(second.shape, False)} {place(second.position)} on a {background} background",
        f"a {first.color} {shape(first.shape, False)} and a {second.color} {shape(second.shape, False)} "
        f"on a {background} background",
        f"a {color(background, True)} backdrop with a {color(first.color, True)} {shape(first.shape, True)} "
        f"and a {color(second.color, True)} {shape(second.shape, True)}",
        f"{first.color} {shape(first.shape, True)} {place(first.position)}, {second.color} "
        f"{shape(second.shape, True)} {place(second.position)}, {background} backdrop",
    ]


class CaptionDescriber:
    """A transformers image-to-text model (BLIP, GIT, a ViT-GPT2 captioner, …): its four best captions by beam
    search, each made a prompt."""

    def __init__(self, source: str, device: str = "cpu") -> None:
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.name = source
        self.device = device
        try:
            self._processor = AutoImageProcessor.from_pretrained(source)
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            self._model = AutoModelForImageTextToText.from_pretrained(source).to(device).eval()
        except (OSError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelLoadError(
                f"DESCRIBER={source}: the image-to-text model cannot be loaded ({first})."
            ) from None

    def describe(self, image: Image.Image) -> list[str]:
        import torch

        pixels = self._processor(images=image.convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            tokens = self._model.generate(
                pixel_values=pixels.to(self.device),
                num_beams=PROMPTS,
                num_return_sequences=PROMPTS,
                min_new_tokens=3,
                max_new_tokens=40,
            )
        captions = self._tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return distinct_prompts([" ".join(caption.split()) for caption in captions])


def distinct_prompts(captions: list[str]) -> list[str]:
    """`PROMPTS` prompts from captions, the likeliest first: empty and repeated ones dropped, and the list
    filled with the first caption's words in another order should fewer be left (a model may say one thing)."""
    prompts: list[str] = []
    for caption in captions:
        text = caption.strip().rstrip(".")
        if text and text.lower() not in (p.lower() for p in prompts):
            prompts.append(text)
    if not prompts:
        prompts = ["an image"]
    base = prompts[0]
    fillers = (f"{base}, detailed", f"a photo of {base}", f"{base}, soft light", f"{base}, close-up")
    for filler in fillers:
        if len(prompts) >= PROMPTS:
            break
        prompts.append(filler)
    return prompts[:PROMPTS]


def open_describer(source: str, device: str = "cpu") -> Describer:
    """`DESCRIBER`: empty for the scene checker, else a transformers image-to-text model."""
    return SceneDescriber() if not source else CaptionDescriber(source, device)
