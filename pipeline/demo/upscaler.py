"""GAN upscaler networks in plain torch: the ESRGAN family's two generators and the demo's patch discriminator.

- `SRVGGNetCompact`, Real-ESRGAN's compact generator (the "realesr-general" / "animevideo" models): convs at
  the input's size, a pixel shuffle, plus the nearest-neighbour enlargement of the input. The demo model's
  own upscaler is one: it learns only what nearest-neighbour gets wrong, so a short CPU run trains it.
- `RRDBNet`, ESRGAN's generator, for users' ESRGAN files.

State-dict keys are those of BasicSR / Real-ESRGAN, so the packaged weights load in spandrel and ESRGAN-format
files (BasicSR's, Real-ESRGAN's compact, or the original ESRGAN repository's `model.N` layout) load here
when spandrel is missing. Images are float tensors in [0, 1], channels first.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

DEMO_UPSCALER_DIR = Path(__file__).parent / "upscaler"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class RRDBConfig:
    """BasicSR's RRDBNet arguments; `scale` 2 and 1 take their input pixel-unshuffled, as BasicSR does."""

    num_feat: int = 32
    num_block: int = 2
    num_grow_ch: int = 16
    scale: int = 4
    num_in_ch: int = 3
    num_out_ch: int = 3


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x  # residual scaling, as in ESRGAN


class RRDB(nn.Module):
    """Residual in residual dense block."""

    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator: features at the input size, two nearest-neighbour 2x upsamplings, two convs."""

    def __init__(self, config: RRDBConfig = RRDBConfig()) -> None:
        super().__init__()
        self.config = config
        self.scale = config.scale  # what spandrel-style callers read
        unshuffle = {4: 1, 2: 2, 1: 4}[config.scale]
        self.unshuffle = unshuffle
        feat = config.num_feat
        self.conv_first = nn.Conv2d(config.num_in_ch * unshuffle**2, feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(feat, config.num_grow_ch) for _ in range(config.num_block)))
        self.conv_body = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(feat, feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(feat, config.num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


@dataclass(frozen=True)
class CompactConfig:
    """Real-ESRGAN's SRVGGNetCompact arguments (PReLU activations)."""

    num_feat: int = 48
    num_conv: int = 8
    upscale: int = 4
    num_in_ch: int = 3
    num_out_ch: int = 3


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact generator: `body` = conv, PReLU, (conv, PReLU) x num_conv, conv to
    out_ch x upscale² channels; pixel shuffle; plus the input enlarged with nearest neighbour."""

    def __init__(self, config: CompactConfig = CompactConfig()) -> None:
        super().__init__()
        self.config = config
        self.scale = config.upscale  # what spandrel-style callers read
        feat = config.num_feat
        layers: list[nn.Module] = [nn.Conv2d(config.num_in_ch, feat, 3, 1, 1), nn.PReLU(num_parameters=feat)]
        for _ in range(config.num_conv):
            layers += [nn.Conv2d(feat, feat, 3, 1, 1), nn.PReLU(num_parameters=feat)]
        layers.append(nn.Conv2d(feat, config.num_out_ch * config.upscale**2, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(config.upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.config.upscale, mode="nearest")


class PatchDiscriminator(nn.Module):
    """Real-or-generated per overlapping patch (about 22 px of a 4x image each), spectral-normalised."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        norm = nn.utils.parametrizations.spectral_norm

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [norm(nn.Conv2d(cin, cout, 4, stride, 1)), nn.LeakyReLU(0.2, inplace=True)]

        self.net = nn.Sequential(
            *block(3, width, 2),
            *block(width, width * 2, 2),
            *block(width * 2, width * 4, 1),
            norm(nn.Conv2d(width * 4, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


# ---------------------------------------------------------------------------------------- files

_OLD_RDB = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
# The original ESRGAN repository's 4x layout (model.N) → BasicSR's names.
_OLD_NAMES = {"model.0": "conv_first", "model.3": "conv_up1", "model.6": "conv_up2", "model.8": "conv_hr"}


def _basicsr_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with the original ESRGAN `model.N` keys renamed to BasicSR's; BasicSR keys pass unchanged."""
    if "conv_first.weight" in state:
        return {key.replace("RDB", "rdb").replace("RRDB_trunk", "body"): v for key, v in state.items()}
    if "model.0.weight" not in state:
        raise ValueError("not an ESRGAN (RRDBNet) state dict: no conv_first or model.0 weights")
    blocks = {int(m.group(1)) for key in state if (m := _OLD_RDB.fullmatch(key))}
    trunk_end = f"model.1.sub.{len(blocks)}"
    last = max(int(key.split(".")[1]) for key in state if key.startswith("model."))
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if match := _OLD_RDB.fullmatch(key):
            block, rdb, conv, kind = match.groups()
            renamed[f"body.{block}.rdb{rdb}.conv{conv}.{kind}"] = value
            continue
        prefix, kind = key.rsplit(".", 1)
        if prefix == trunk_end:
            renamed[f"conv_body.{kind}"] = value
        elif prefix == f"model.{last}":
            renamed[f"conv_last.{kind}"] = value
        elif prefix in _OLD_NAMES:
            renamed[f"{_OLD_NAMES[prefix]}.{kind}"] = value
        else:
            raise ValueError(f"unexpected key {key!r} for a 4x ESRGAN file")
    return renamed


def config_of(state: dict[str, torch.Tensor]) -> RRDBConfig:
    """The RRDBNet arguments a BasicSR-layout state dict was made with."""
    first = state["conv_first.weight"]
    in_channels = first.shape[1]
    scale = {3: 4, 12: 2, 48: 1}.get(in_channels)
    if scale is None:
        raise ValueError(f"conv_first takes {in_channels} channels; an RRDBNet takes 3, 12 or 48")
    blocks = {int(key.split(".")[1]) for key in state if key.startswith("body.")}
    return RRDBConfig(
        num_feat=first.shape[0],
        num_block=len(blocks),
        num_grow_ch=state["body.0.rdb1.conv1.weight"].shape[0],
        scale=scale,
        num_in_ch=in_channels // {4: 1, 2: 4, 1: 16}[scale],
        num_out_ch=state["conv_last.weight"].shape[0],
    )


def compact_config_of(state: dict[str, torch.Tensor]) -> CompactConfig:
    """The SRVGGNetCompact arguments a Real-ESRGAN compact state dict was made with."""
    convs = sorted(
        int(key.split(".")[1]) for key in state if key.startswith("body.") and key.endswith(".bias")
    )
    first, last = state["body.0.weight"], state[f"body.{convs[-1]}.weight"]
    out_channels = 3
    upscale = round((last.shape[0] / out_channels) ** 0.5)
    if upscale**2 * out_channels != last.shape[0]:
        raise ValueError(f"the last conv makes {last.shape[0]} channels, not 3 x a square")
    return CompactConfig(
        num_feat=first.shape[0],
        num_conv=len(convs) - 2,
        upscale=upscale,
        num_in_ch=first.shape[1],
        num_out_ch=out_channels,
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file or a torch pickle (.pth/.pt, loaded weights-only)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("params_ema", "params", "state_dict"):  # BasicSR / Real-ESRGAN checkpoints nest them
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    return state


Upscaler = RRDBNet | SRVGGNetCompact


def load_esrgan_file(path: Path) -> Upscaler:
    """The generator of an ESRGAN-format file in eval mode: RRDBNet (BasicSR or original layout) or
    Real-ESRGAN's SRVGGNetCompact. Raises ValueError when the file is in neither format."""
    state = read_state_dict(path)
    model: nn.Module
    if "body.0.weight" in state and "body.1.weight" in state and state["body.1.weight"].dim() == 1:
        model = SRVGGNetCompact(compact_config_of(state))
    else:
        state = _basicsr_keys(state)
        model = RRDBNet(config_of(state))
    model.load_state_dict(state)
    return model.eval()


def save_generator(model: Upscaler, folder: Path, extra: dict | None = None) -> None:
    """The weights as float32 safetensors and the arguments as config.json, in `folder`."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().float().contiguous() for key, value in model.state_dict().items()}
    architecture = type(model).__name__
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "architecture": architecture})
    config = {"architecture": architecture, **asdict(model.config), **(extra or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def load_demo_upscaler(folder: Path | None = None) -> Upscaler | None:
    """The packaged demo upscaler (or the one in `folder`), or None when its weights are not there."""
    folder = folder or DEMO_UPSCALER_DIR
    if not (folder / WEIGHTS_FILE).is_file():
        return None
    return load_esrgan_file(folder / WEIGHTS_FILE)
