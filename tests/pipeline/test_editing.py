"""The editing flows' geometry (pure) and their pixels on the tiny model: what is kept stays exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline import editing
from pipeline.editing import Box, Direction, Edit, Layout, feather_width, layout, mask
from pipeline.errors import RequestError
from pipeline.images import decode_image, encode_png
from pipeline.request import Mode
from tests.fixtures.requests import tiny_request


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# ---- what a member types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "box"),
    [
        ("left", (0, 0, 50, 100)),
        ("Right half", (50, 0, 50, 100)),
        ("top", (0, 0, 100, 50)),
        ("bottom", (0, 50, 100, 50)),
        ("centre", (25, 25, 50, 50)),
        ("center", (25, 25, 50, 50)),
        ("10, 20, 30, 40", (10, 20, 30, 40)),
        ("10%,20%,30%,40%", (10, 20, 30, 40)),
    ],
)
def test_regions_from_presets_and_percentages(text, box):
    assert editing.region(text).box == box


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("middle", "not one Kaika knows; give left, right, top, bottom, centre, or x,y,w,h"),
        ("10,20,30", "not one Kaika knows"),
        ("a,b,c,d", "not one Kaika knows"),
        ("-5,0,50,50", "needs x and y from 0 and a width and height above 0"),
        ("0,0,0,50", "needs x and y from 0 and a width and height above 0"),
        ("60,0,50,50", "goes past the image: x + w and y + h must be at most 100"),
        ("0,0,50,nan", "needs x and y from 0"),
    ],
)
def test_a_bad_region_is_refused_with_what_to_type(text, message):
    with pytest.raises(RequestError, match=message.replace("+", r"\+")):
        editing.region(text)


@pytest.mark.parametrize("factor", [0.99, 0.5, 2.01, 3])
def test_zoom_factor_must_be_from_one_to_two(factor):
    with pytest.raises(RequestError, match="zoom factor must be from 1 to 2"):
        editing.zoom(factor)
    assert editing.zoom(1.5).factor == 1.5 and editing.zoom(2).factor == 2.0 and editing.zoom(1).factor == 1
    assert editing.zoom(" 1.25 ").factor == 1.25 and editing.zoom("2x").factor == 2.0
    with pytest.raises(RequestError, match=r"The zoom factor is a number such as 1\.5, not 'far'\."):
        editing.zoom(" far")


def test_a_zoom_by_one_needs_a_new_shape():
    with pytest.raises(RequestError, match="A zoom factor of 1 leaves the image as it is"):
        editing.check_edit(editing.zoom(1), 64, 64)
    editing.check_edit(editing.zoom(1), 64, 64, reshaped=True)  # a new --ar is coming: fine
    with pytest.raises(RequestError, match="A zoom factor of 1 leaves the image as it is"):
        layout(editing.zoom(1), 64, 64, native=64, multiple=8)
    with pytest.raises(RequestError, match="A zoom factor of 1 leaves the image as it is"):
        layout(editing.zoom(1, canvas=(64, 64)), 64, 64, native=64, multiple=8)  # --ar 1:1 of a square
    assert editing.reshapes("a cat --ar 2:1 --seed 3") and not editing.reshapes("a cat --seed 3")


def test_a_zoom_to_a_new_shape_puts_the_image_in_the_middle_of_it():
    wide = layout(editing.zoom(1, canvas=(88, 40)), 64, 64, native=64, multiple=8)
    assert (wide.width, wide.height) == (88, 40) and wide.source == Box(24, 0, 40, 40)
    further = layout(editing.zoom(2, canvas=(88, 40)), 64, 64, native=64, multiple=8)
    assert further.source == Box(34, 10, 20, 20)


def test_pan_names_its_directions():
    assert editing.pan(" Left ").direction is Direction.LEFT
    with pytest.raises(RequestError, match="A pan goes left, right, up, down; not 'north'"):
        editing.pan("north")


def test_an_edit_survives_the_job_params():
    for edit in (
        editing.region("10,20,30,40"),
        editing.zoom(1.5),
        editing.zoom(1, canvas=(88, 40)),
        editing.pan("up"),
        editing.square(),
    ):
        assert Edit.from_params({"width": 64, **edit.params()}) == edit
    assert Edit.from_params({"width": 64}) is None


# ---- where things go -------------------------------------------------------------------------------


def test_zoom_keeps_the_canvas_size_and_shrinks_the_source_into_its_centre():
    plan = layout(editing.zoom(2), 64, 64, native=64, multiple=8)
    assert (plan.width, plan.height) == (64, 64) and plan.source == Box(16, 16, 32, 32)
    wide = layout(editing.zoom(1.5), 72, 56, native=64, multiple=8)
    assert (wide.width, wide.height) == (72, 56) and wide.source == Box(12, 9, 48, 37)


def test_zoom_of_an_upscale_comes_back_within_the_budget():
    plan = layout(editing.zoom(2), 128, 128, native=64, multiple=8)
    assert (plan.width, plan.height) == (64, 64) and plan.source == Box(16, 16, 32, 32)


@pytest.mark.parametrize(
    ("direction", "size", "source"),
    [
        # 96x64 would be over the 64x64 budget: the family's nearest 3:2 size, the image resized into it.
        (Direction.LEFT, (72, 48), Box(24, 0, 48, 48)),
        (Direction.RIGHT, (72, 48), Box(0, 0, 48, 48)),
        (Direction.UP, (48, 72), Box(0, 24, 48, 48)),
        (Direction.DOWN, (48, 72), Box(0, 0, 48, 48)),
    ],
)
def test_pan_extends_one_side_by_half_within_the_budget(direction, size, source):
    plan = layout(Edit("pan", direction=direction), 64, 64, native=64, multiple=8)
    assert (plan.width, plan.height) == size and plan.source == source


def test_pan_within_the_budget_keeps_the_image_at_its_size():
    plan = layout(editing.pan("right"), 64, 64, native=128, multiple=16)
    assert (plan.width, plan.height) == (96, 64) and plan.source == Box(0, 0, 64, 64)


def test_make_square_centres_the_image_on_its_longer_side():
    tall = layout(editing.square(), 48, 64, native=64, multiple=8)
    assert (tall.width, tall.height) == (64, 64) and tall.source == Box(8, 0, 48, 64)
    wide = layout(editing.square(), 72, 56, native=64, multiple=8)  # 72x72 is over the budget
    assert (wide.width, wide.height) == (64, 64) and wide.source == Box(0, 7, 64, 50)
    with pytest.raises(RequestError, match="square already"):
        layout(editing.square(), 64, 64, native=64, multiple=8)


@pytest.mark.parametrize("native,multiple", [(64, 8), (512, 8), (1024, 16), (1024, 64)])
@pytest.mark.parametrize("size", [(64, 64), (72, 48), (1024, 576), (2048, 2048)])
def test_every_outpaint_canvas_is_on_the_multiple_within_the_budget(native, multiple, size):
    for edit in (
        editing.zoom(2),
        editing.zoom(1.3),
        editing.pan("left"),
        editing.pan("down"),
        editing.square(),
    ):
        if edit.kind == "square" and size[0] == size[1]:
            continue
        plan = layout(edit, *size, native=native, multiple=multiple)
        assert plan.width % multiple == 0 and plan.height % multiple == 0
        assert plan.width * plan.height <= native * native
        box = plan.source
        assert 0 <= box.left and box.right <= plan.width and 0 <= box.top and box.bottom <= plan.height


def test_region_layout_is_in_pixels_of_the_image():
    plan = layout(editing.region("25,25,50,50"), 64, 48, native=64, multiple=8)
    assert (plan.width, plan.height) == (64, 48) and plan.region == Box(16, 12, 32, 24)
    with pytest.raises(RequestError, match="under one pixel"):
        layout(editing.region("0,0,0.5,50"), 64, 64, native=64, multiple=8)


# ---- the mask --------------------------------------------------------------------------------------


def test_region_mask_is_white_inside_black_beyond_a_feather_under_a_tenth_of_the_side():
    plan = layout(editing.region("25,25,50,50"), 64, 64, native=64, multiple=8)
    alpha = np.asarray(mask(plan))
    feather = feather_width(64, 64)
    assert 2 <= feather <= 64 // 10
    assert (alpha[16:48, 16:48] == 255).all()
    beyond = np.ones_like(alpha, dtype=bool)
    beyond[16 - feather : 48 + feather, 16 - feather : 48 + feather] = False
    assert (alpha[beyond] == 0).all()
    band = alpha[16 - feather : 16, 32]  # left of the box: a ramp up towards it
    assert (np.diff(band.astype(int)) > 0).all() and 0 < band[0] < band[-1] < 255


def test_outpaint_mask_keeps_the_source_but_its_inner_border_and_blends_only_where_new_pixels_touch():
    plan = Layout(72, 48, Box(24, 0, 48, 48))  # a pan to the left: new pixels on the left only
    alpha = np.asarray(mask(plan))
    feather = feather_width(72, 48)
    assert (alpha[:, :24] == 255).all()
    assert (alpha[:, 24 + feather :] == 0).all()  # the top, bottom and right edges touch no new pixels
    assert (np.diff(alpha[10, 24 : 24 + feather + 1].astype(int)) < 0).all()


def test_canvas_stretches_the_edges_of_the_resized_source():
    source = Image.new("RGB", (32, 32), (200, 10, 10))
    source.paste((10, 200, 10), (0, 0, 32, 16))
    canvas = editing.canvas_image(source, Layout(64, 64, Box(16, 16, 32, 32)))
    assert canvas.getpixel((0, 0)) == (10, 200, 10) and canvas.getpixel((63, 63)) == (200, 10, 10)
    assert canvas.crop((16, 16, 48, 48)).tobytes() == source.tobytes()


# ---- on the tiny model -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_image(tiny_engine) -> Image.Image:
    (result,) = tiny_engine.run([tiny_request(seed=21, num_images=1)])
    return result.images[0]


def run_edit(tiny_engine, source: Image.Image, edit: Edit, prompt: str = "a red circle") -> list[Image.Image]:
    family = tiny_engine.family
    request = editing.edit_request(
        tiny_request(prompt, steps=3),
        encode_png(source),
        edit,
        seed=5,
        native=family.native_size,
        multiple=family.size_multiple,
    )
    assert request.mode is Mode.INPAINT and request.num_images == 4 and request.strength == 1.0
    (result,) = tiny_engine.run([request.validate()])
    assert all(image.size == (request.width, request.height) for image in result.images)
    return result.images


def test_vary_region_changes_the_box_and_keeps_every_pixel_beyond_the_feather(tiny_engine, source_image):
    images = run_edit(tiny_engine, source_image, editing.region("25,25,50,50"), prompt="a blue square")
    feather = feather_width(64, 64)
    kept = np.ones((64, 64), dtype=bool)
    kept[16 - feather : 48 + feather, 16 - feather : 48 + feather] = False
    for image in images:
        assert (pixels(image)[kept] == pixels(source_image)[kept]).all()
        assert (pixels(image)[16:48, 16:48] != pixels(source_image)[16:48, 16:48]).any()


def test_zoom_out_2x_has_the_source_downscaled_in_its_centre(tiny_engine, source_image):
    images = run_edit(tiny_engine, source_image, editing.zoom(2))
    shrunk = pixels(source_image.resize((32, 32), Image.Resampling.LANCZOS))
    feather = feather_width(64, 64)
    inner = slice(16 + feather, 48 - feather)
    for image in images:
        centre = pixels(image)[inner, inner]
        assert (centre == shrunk[feather:-feather, feather:-feather]).all()
        assert (pixels(image)[:16] != pixels(source_image)[:16]).any()  # a new border around it


def test_pan_keeps_the_old_pixels_on_the_kept_side(tiny_engine, source_image):
    for image in run_edit(tiny_engine, source_image, editing.pan("left")):
        assert image.size == (72, 48)
        kept = pixels(source_image.resize((48, 48), Image.Resampling.LANCZOS))
        feather = feather_width(72, 48)
        assert (pixels(image)[:, 24 + feather :] == kept[:, feather:]).all()


def test_make_square_keeps_the_original_centred(tiny_engine):
    (tall,) = tiny_engine.run([tiny_request(seed=4, num_images=1, width=48, height=64)])
    source = tall.images[0]
    feather = feather_width(64, 64)
    for image in run_edit(tiny_engine, source, editing.square()):
        assert image.size == (64, 64)
        assert (pixels(image)[:, 8 + feather : 56 - feather] == pixels(source)[:, feather:-feather]).all()


def test_the_inpainted_request_carries_its_canvas_and_mask(tiny_engine, source_image):
    request = editing.edit_request(
        tiny_request(), encode_png(source_image), editing.zoom(2), seed=9, native=64, multiple=8
    )
    canvas = decode_image(request.source_image)
    assert canvas.size == (64, 64) and request.seed == 9
    assert decode_image(request.mask_image).getpixel((0, 0)) == (255, 255, 255)
