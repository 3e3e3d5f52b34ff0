"""Kaika's demo motion model: image → short video on the frozen demo image model.

A spatial-transformer motion model, not a diffusion model. From the first frame's latent (the demo
autoencoder's, frozen) it finds the shape's centre; from the prompt (the demo text encoder's hidden states,
frozen) it reads which motion is asked for; for each moment of the clip and the motion amount it predicts a
similarity transform (shift, scale, clockwise turn about the centre), and each frame is the first frame's
shape moved by its transform over the first frame's still background, at the first frame's own resolution.
So colours, shapes and the background are the first frame's own, and a frame is made in one pass: there
are no denoising steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from PIL import Image
from torch import nn

from pipeline.demo.moving import first_frame_prompt as _first_frame_prompt
from pipeline.demo.scenes import IMAGE_SIZE

DEMO_VIDEO_DIR = Path(__file__).parent / "video_model"
_FREQUENCIES = 4  # Fourier features of the moment in the clip


class MotionModel(ModelMixin, ConfigMixin):
    """Centre of the shape from a latent; motion code from caption hidden states; transform per moment."""

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        text_width: int = 128,
        centre_width: int = 32,
        pool_heads: int = 4,
        code_width: int = 64,
        hidden_width: int = 128,
    ):
        super().__init__()
        # The latent, the latent minus its border average (what differs from the background) and coordinates.
        self.centre = nn.Sequential(
            nn.Conv2d(2 * latent_channels + 2, centre_width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(centre_width, centre_width, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(centre_width, centre_width, 3, padding=2, dilation=2),
            nn.SiLU(),
            nn.Conv2d(centre_width, 1, 1),
        )
        self.pool_scores = nn.Linear(text_width, pool_heads)
        self.code = nn.Sequential(
            nn.Linear(pool_heads * text_width, hidden_width), nn.SiLU(), nn.Linear(hidden_width, code_width)
        )
        self.trajectory = nn.Sequential(
            nn.Linear(code_width + 2 + 2 * _FREQUENCIES, hidden_width),
            nn.SiLU(),
            nn.Linear(hidden_width, hidden_width),
            nn.SiLU(),
            nn.Linear(hidden_width, hidden_width),
            nn.SiLU(),
            nn.Linear(hidden_width, 4),
        )

    def find_centre(self, latents: torch.Tensor) -> torch.Tensor:
        """(batch, 2) centre (x, y) in [-1, 1] of each latent's shape: a soft arg-max over latent cells."""
        batch, _, height, width = latents.shape
        border = torch.cat(
            [latents[..., 0, :], latents[..., -1, :], latents[..., :, 0], latents[..., :, -1]], dim=-1
        ).mean(-1)
        ys = (torch.arange(height, dtype=latents.dtype, device=latents.device) + 0.5) / height * 2 - 1
        xs = (torch.arange(width, dtype=latents.dtype, device=latents.device) + 0.5) / width * 2 - 1
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        coordinates = torch.stack([grid_x, grid_y]).expand(batch, 2, height, width)
        features = torch.cat([latents, latents - border[..., None, None], coordinates], dim=1)
        weights = self.centre(features).flatten(1).softmax(-1)
        return torch.stack([(weights * grid_x.flatten()).sum(-1), (weights * grid_y.flatten()).sum(-1)], -1)

    def motion_code(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Attention pooling of the caption's hidden states (padding masked) into one code per caption."""
        scores = self.pool_scores(hidden_states).masked_fill(~attention_mask.bool()[..., None], -1e4)
        weights = scores.softmax(1)  # (batch, tokens, heads)
        pooled = torch.einsum("bth,btw->bhw", weights, hidden_states).flatten(1)
        return self.code(pooled)

    def _raw_moves(self, code: torch.Tensor, amount: torch.Tensor, moment: torch.Tensor) -> torch.Tensor:
        angles = moment[..., None] * math.pi * torch.arange(1, _FREQUENCIES + 1, device=moment.device)
        features = torch.cat(
            [
                code[:, None].expand(-1, moment.shape[1], -1),
                amount[:, None, None].expand(-1, moment.shape[1], 1),
                moment[..., None],
                angles.sin(),
                angles.cos(),
            ],
            dim=-1,
        )
        return self.trajectory(features)

    def moves(self, code: torch.Tensor, amount: torch.Tensor, moment: torch.Tensor) -> torch.Tensor:
        """(batch, moments, 4): shift x, shift y (pixels of 64), log scale, clockwise turn at each moment;
        zero at moment 0 (the first frame is the image) and for amount 0 (no motion)."""
        start = self._raw_moves(code, amount, torch.zeros_like(moment[:, :1]))
        return amount[:, None, None] * (self._raw_moves(code, amount, moment) - start)

    def forward(
        self,
        latents: torch.Tensor,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        amount: torch.Tensor,
        moment: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.find_centre(latents), self.moves(
            self.motion_code(hidden_states, attention_mask), amount, moment
        )


def sampling_grid(centre: torch.Tensor, moves: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """grid_sample grids (batch * moments, height, width, 2) that draw each frame from the first: every
    output pixel looks up where the transform brought it from. `centre` in [-1, 1]; shifts in pixels of a
    64-pixel frame along each axis; scale and turn about the centre in square pixels."""
    batch, count, _ = moves.shape
    device, dtype = moves.device, moves.dtype
    ys = torch.arange(height, device=device, dtype=dtype) + 0.5
    xs = torch.arange(width, device=device, dtype=dtype) + 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    centre_x = ((centre[:, 0] + 1) / 2 * width)[:, None, None, None]
    centre_y = ((centre[:, 1] + 1) / 2 * height)[:, None, None, None]
    shift_x = (moves[..., 0] * width / IMAGE_SIZE)[..., None, None]
    shift_y = (moves[..., 1] * height / IMAGE_SIZE)[..., None, None]
    scale = moves[..., 2].exp()[..., None, None]
    cos, sin = moves[..., 3].cos()[..., None, None], moves[..., 3].sin()[..., None, None]
    # Undo the shift, then the turn and the scale about the centre.
    offset_x = grid_x - centre_x - shift_x
    offset_y = grid_y - centre_y - shift_y
    source_x = centre_x + (cos * offset_x + sin * offset_y) / scale
    source_y = centre_y + (-sin * offset_x + cos * offset_y) / scale
    grid = torch.stack([source_x / width * 2 - 1, source_y / height * 2 - 1], dim=-1)
    return grid.reshape(batch * count, height, width, 2)


# How far a pixel's colour is from the background's (RGB distance, channels in [-1, 1]): nearer than _STILL it is
# background and stays where it is; beyond _SHAPE it is wholly the shape's and moves; between, the shape's soft
# edge. (The demo palette's colours are at least 0.86 apart; a picture's background strays up to about 0.2.)
_STILL = 0.25
_SHAPE = 0.5


def background_colour(first: torch.Tensor) -> torch.Tensor:
    """(batch, channels, 1, 1): the colour of each picture's background: the median of the pixels near the median
    of its border (a border can be a little off the rest of the background, and a shape can touch it)."""
    border = (
        torch.cat([first[..., 0, :], first[..., -1, :], first[..., :, 0], first[..., :, -1]], dim=-1)
        .median(-1)
        .values[..., None, None]
    )
    near = (first - border).norm(dim=1) < _SHAPE  # (batch, h, w)
    colours = [
        picture[:, mask].median(-1).values[:, None, None] if mask.any() else edge
        for picture, mask, edge in zip(first, near, border, strict=True)
    ]
    return torch.stack(colours)


def _background_around(first: torch.Tensor, owned: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """What the background looks like around the shape, to show where the shape was: the background pixels'
    average over a wide neighbourhood (a 16x16 grid of cells, blurred over about a third of the picture),
    or the background colour where there is none near."""
    height, width = first.shape[-2:]
    seen = (~owned).to(first.dtype)
    total, weight = F.adaptive_avg_pool2d(first * seen, 16), F.adaptive_avg_pool2d(seen, 16)
    for _ in range(3):
        total = F.avg_pool2d(total, 5, stride=1, padding=2, count_include_pad=False)
        weight = F.avg_pool2d(weight, 5, stride=1, padding=2, count_include_pad=False)
    around = torch.where(weight > 1e-3, total / weight.clamp_min(1e-3), background)
    return F.interpolate(around, size=(height, width), mode="bilinear", align_corners=False)


def warp(
    first: torch.Tensor, centre: torch.Tensor, moves: torch.Tensor, mode: str = "bilinear"
) -> torch.Tensor:
    """(batch, moments, channels, h, w) frames: the shape in `first` (batch, channels, h, w) moved by each
    transform over the picture's still background. The shape is what differs from the background colour, with
    a soft edge (its alpha) and its glow; it moves with its alpha and is laid over the background, and where it
    was shows the background around it. A moment without motion gives `first` exactly."""
    batch, channels, height, width = first.shape
    count = moves.shape[1]
    background = background_colour(first)
    distance = (first - background).norm(dim=1, keepdim=True)
    alpha = ((distance - _STILL) / (_SHAPE - _STILL)).clamp(0, 1)
    # The faint glow a drawn shape has around it (up to 5 pixels of the demo's 64 px drawing) goes with the
    # shape, or it would stay behind as the shape's outline.
    reach = 2 * 5 * max(1, round(width / IMAGE_SIZE)) + 1
    owned = F.max_pool2d((alpha > 0).to(first.dtype), reach, stride=1, padding=reach // 2) > 0
    still = torch.where(owned, _background_around(first, owned, background), first)
    # The shape premultiplied by its alpha: each of its pixels is alpha x shape + (1 - alpha) x what is behind.
    shape = torch.where(owned, first - (1 - alpha) * still, torch.zeros_like(first))
    grid = sampling_grid(centre, moves, height, width)
    source = torch.cat([shape, alpha], dim=1)[:, None].expand(batch, count, channels + 1, height, width)
    moved = F.grid_sample(
        source.reshape(batch * count, channels + 1, height, width),
        grid,
        mode=mode,
        padding_mode="zeros",
        align_corners=False,
    ).reshape(batch, count, channels + 1, height, width)
    return moved[:, :, :channels] + (1 - moved[:, :, channels:]) * still[:, None]


def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen demo text encoder's hidden states of each prompt, and which tokens are not padding."""
    tokens = tokenizer(
        prompts,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    device = text_encoder.device
    hidden = text_encoder(tokens.input_ids.to(device))[0]
    return hidden, tokens.attention_mask.to(device)


def encode_images(vae, pixels: torch.Tensor) -> torch.Tensor:
    """Scaled latents (the demo autoencoder's posterior mean) of images in [-1, 1], at the demo's 64 px."""
    if pixels.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
        pixels = F.interpolate(pixels, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True)
    latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mean
    return latents.float() * vae.config.scaling_factor


@dataclass
class DemoVideoPipelineOutput:
    frames: list  # frames[0]: the video's frames (PIL images, or an array of (frames, h, w, 3) in [0, 1])


class DemoVideoPipeline:
    """Image-to-video on the demo image model's frozen autoencoder and text encoder, diffusers-style."""

    def __init__(self, motion_model: MotionModel, vae, text_encoder, tokenizer):
        self.motion_model = motion_model.eval()
        self.vae, self.text_encoder, self.tokenizer = vae, text_encoder, tokenizer

    @classmethod
    def from_pretrained(cls, folder: Path, image_pipe) -> DemoVideoPipeline:
        model = MotionModel.from_pretrained(Path(folder))
        model.to(image_pipe.vae.device)
        return cls(model, image_pipe.vae, image_pipe.text_encoder, image_pipe.tokenizer)

    def to(self, device=None, dtype=None) -> DemoVideoPipeline:
        """The motion model follows `device`; it stays float32 (it is tiny, and its warp wants the precision)."""
        if device is not None:
            self.motion_model.to(device)
        return self

    def set_progress_bar_config(self, **_: Any) -> None:
        """No progress bar to configure: a clip is one pass."""

    @staticmethod
    def first_frame_prompt(prompt: str) -> str:
        """The picture to draw before animating `prompt` (text-to-video): see `moving.first_frame_prompt`."""
        return _first_frame_prompt(prompt)

    @torch.inference_mode()
    def __call__(
        self,
        image: Image.Image,
        prompt: str,
        *,
        num_frames: int = 8,
        motion: float = 0.5,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        callback_on_step_end=None,
        output_type: str = "pil",
    ) -> DemoVideoPipelineOutput:
        """`num_frames` frames of `image` moving as `prompt` says, `motion` (0..1) far. The first frame is the
        image. One pass makes every frame, so `num_inference_steps` and `generator` change nothing (they are
        taken so the call looks like any video pipeline's); `callback_on_step_end` is called once per frame,
        with the frames so far as `latents` (1, 3, frames, h, w) in [-1, 1] for a progress strip."""
        if num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, not {num_frames}")
        if not 0.0 <= motion <= 1.0:
            raise ValueError(f"motion is between 0 and 1, not {motion}")
        device = self.motion_model.device
        pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0)
        first = pixels.permute(2, 0, 1)[None].to(device)
        latents = encode_images(self.vae, first).to(device)
        hidden, mask = encode_prompts(self.tokenizer, self.text_encoder, [prompt])
        moments = torch.linspace(0.0, 1.0, num_frames, device=device)[None] if num_frames > 1 else None
        if moments is None:
            moments = torch.zeros(1, 1, device=device)
        amount = torch.tensor([float(motion)], device=device)
        centre, moves = self.motion_model(latents, hidden.float().to(device), mask, amount, moments)
        frames = warp(first, centre, moves)[0].clamp(-1, 1)  # (frames, 3, h, w)
        if callback_on_step_end is not None:
            for index in range(num_frames):
                so_far = frames[: index + 1].permute(1, 0, 2, 3)[None]
                callback_on_step_end(self, index, index, {"latents": so_far})
        video = ((frames + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()  # (frames, h, w, 3) in [0, 1]
        if output_type == "np":
            return DemoVideoPipelineOutput(frames=[video])
        if output_type != "pil":
            raise ValueError(f"output_type is 'pil' or 'np', not {output_type!r}")
        images = [Image.fromarray((frame * 255).round().astype(np.uint8)) for frame in video]
        return DemoVideoPipelineOutput(frames=[images])


def save_animation(frames: list[Image.Image], path: Path, scale: int = 4, fps: int = 8) -> Path:
    """A looping GIF of `frames` and beside it a PNG strip of them, both enlarged `scale` times pixel for pixel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    big = [
        frame.resize((frame.width * scale, frame.height * scale), Image.Resampling.NEAREST)
        for frame in frames
    ]
    big[0].save(path, save_all=True, append_images=big[1:], duration=round(1000 / fps), loop=0)
    gap = 2
    strip = Image.new("RGB", (len(frames) * (frames[0].width + gap) - gap, frames[0].height), "white")
    for index, frame in enumerate(frames):
        strip.paste(frame, (index * (frame.width + gap), 0))
    big_strip = strip.resize((strip.width * scale, strip.height * scale), Image.Resampling.NEAREST)
    big_strip.save(path.with_suffix(".png"))
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.demo.motion "a red circle moving right on a blue background" --out docs/animate.gif`:
    a `--video` clip on the demo models, made as Kaika makes it (the demo model draws the first frame, the demo
    GAN enlarges it, the motion model animates that), as a GIF and a PNG strip."""
    import argparse

    from pipeline.engine import Engine
    from pipeline.images import encode_png
    from pipeline.request import GenerationRequest, animate_request

    parser = argparse.ArgumentParser(prog="python -m pipeline.demo.motion", description=main.__doc__)
    parser.add_argument("prompt")
    parser.add_argument("--out", type=Path, default=Path("out/animate.gif"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--motion", choices=("low", "high"), default="high")
    args = parser.parse_args(argv)
    engine = Engine.load("", device="cpu", dtype="float32")
    side = engine.family.native_size  # what members get: 256 px with the demo GAN
    text = GenerationRequest(
        prompt=args.prompt, seed=args.seed, width=side, height=side, num_images=1, video=True
    ).validate()
    (image,) = engine.run([text])
    (video,) = engine.run(
        [
            animate_request(
                text,
                encode_png(image.images[0]),
                width=side,
                height=side,
                seed=args.seed,
                motion=args.motion,
                frames=args.frames,
            )
        ]
    )
    saved = save_animation(video.images, args.out, scale=max(1, 256 // side), fps=video.fps)
    print(f"wrote {saved} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
