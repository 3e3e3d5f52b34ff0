"""Pictures the tests and benchmarks hand in as uploads."""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from pipeline.demo.scenes import PALETTE, Scene, draw_shape, random_scene, render


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit grayscale PNG of side x side black pixels: about 50 KB, 1.2 GB once decoded as RGB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class HeldOutPicture:
    """A flat-colour picture /describe should read, and the scene it shows."""

    image: Image.Image
    scene: Scene
    variant: str  # "render" (the demo's own), "size" (another picture size), "radius", "shade"


def held_out_pictures(per_variant: int = 50, seed: int = 0) -> list[HeldOutPicture]:
    """Scenes the demo model never trained on (`is_held_out`), each drawn four ways: as the demo renders them,
    at other picture sizes, with the shapes drawn larger or smaller, and in nearby shades of each colour."""
    rng = random.Random(seed)
    pictures = []
    for variant in ("render", "size", "radius", "shade"):
        for _ in range(per_variant):
            scene = random_scene(rng, held_out=True)
            if variant == "render":
                image = render(scene)
            elif variant == "size":
                image = render(scene, size=rng.choice((48, 96, 128, 200)))
            elif variant == "radius":
                factor = rng.uniform(0.75, 1.25)
                image = _draw(
                    replace(scene, shapes=tuple(replace(s, radius=s.radius * factor) for s in scene.shapes))
                )
            else:
                image = _draw(
                    scene,
                    shade=lambda colour: tuple(min(255, max(0, c + rng.randint(-20, 20))) for c in colour),
                )
            pictures.append(HeldOutPicture(image, scene, variant))
    return pictures


def _draw(scene: Scene, size: int = 64, shade=lambda colour: colour) -> Image.Image:  # type: ignore[no-untyped-def]
    """`scene` drawn as `render` draws it, each colour passed through `shade`."""
    big = 4 * size
    scale = big / 64
    background = shade(PALETTE[scene.background])
    canvas = Image.new("RGB", (big, big), background)
    draw = ImageDraw.Draw(canvas)
    for shape in scene.shapes:
        draw_shape(
            draw,
            shape.kind,
            shape.x * scale,
            shape.y * scale,
            shape.radius * scale,
            shade(PALETTE[shape.color]),
            background,
        )
    return canvas.resize((size, size), Image.Resampling.BOX)


def names_scene(prompt: str, scene: Scene) -> bool:
    """Whether `prompt` names the scene's background ("on a blue background") and each object's colour and
    shape ("a red circle") in plain words."""
    text = f" {prompt.replace(',', ' ')} "
    if f" on a {scene.background} background " not in text:
        return False
    return all(f" {shape.color} {shape.kind} " in text for shape in scene.shapes)
