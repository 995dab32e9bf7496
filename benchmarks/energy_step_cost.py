"""Where the energy model's extra training cost goes: the double backward pass, by kind of layer.

    python benchmarks/energy_step_cost.py [--threads N] [--steps 15] [--channels 16] [--batch 64]

The two digits models of ``benchmarks/energy.py`` (the same UNet and batch; the energy model trains
through −∇ₓE, a double backward pass, with its classifier term off) step in alternation with
variants of them; the table gives the median seconds per step, the ratio energy / plain (the
issue's target ≤ 2.2×) and the ratio of the fastest steps (less sensitive to other load):

- ``closed form``: the package's energy model, whose GroupNorm+SiLU layers differentiate their
  backward pass in closed form (``vecfield.nn.GroupNormSiLU(double_backward=True)``);
- ``composite``: the same weights with PyTorch's composite GroupNorm+SiLU, whose second derivative
  goes through decomposed formulas (the energy model before the closed form); the same in the
  channels_last memory format; and the same function in primitive ops (mean, variance, rsqrt,
  x·σ(x)), differentiated twice by autograd;
- diagnostics, not the same function: every GroupNorm+SiLU replaced by a plain SiLU (``SiLU only``)
  or removed (``no GroupNorm+SiLU``) in both models, so the ratio left is the rest of the network's,
  mostly the convolutions' (six passes against three: a FLOP floor of 2.0×).

Then a profile of 5 steps of the package's two models, split into convolution passes (forward,
backward and double backward) and everything else. Writes benchmarks/results/energy_step_cost.json.
"""

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.profiler import profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from energy import Settings, image_config

from vecfield.files import write_text_atomic
from vecfield.images.datasets import load_digits
from vecfield.images.generator import ImageGenerator, build_image_generator
from vecfield.nn.group_norm_silu import GroupNormSiLU

RESULT = Path(__file__).resolve().parent / "results" / "energy_step_cost.json"
CONVOLUTION_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward",
                   "aten::_convolution_double_backward", "aten::cudnn_convolution",
                   "aten::convolution_backward_overrideable")


class PrimitiveGroupNormSiLU(nn.Module):
    """The same function in primitive ops (mean, variance, rsqrt, x·σ(x)): autograd's own double backward."""

    def __init__(self, layer: GroupNormSiLU) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer, shape = self.layer, (1, x.shape[1]) + (1,) * (x.dim() - 2)
        grouped = x.reshape(x.shape[0], layer.num_groups, -1)
        centred = grouped - grouped.mean(-1, keepdim=True)
        x_hat = (centred * torch.rsqrt(centred.square().mean(-1, keepdim=True) + layer.eps)).reshape(x.shape)
        y = x_hat * layer.weight.view(shape) + layer.bias.view(shape)
        return y * torch.sigmoid(y)


def composite(layer: GroupNormSiLU) -> GroupNormSiLU:
    """The layer's copy that runs PyTorch's composite (double_backward=False)."""
    copied = copy.deepcopy(layer)
    copied.double_backward = False
    return copied


#: variant -> (the models it builds, what becomes of each GroupNormSiLU (None: kept), channels_last)
VARIANTS: dict[str, tuple[tuple[str, ...], Callable[[GroupNormSiLU], nn.Module] | None, bool]] = {
    "closed form": (("energy", "plain"), None, False),
    "composite": (("energy",), composite, False),
    "primitive ops": (("energy",), PrimitiveGroupNormSiLU, False),
    "composite, channels_last": (("energy",), composite, True),
    "SiLU only": (("energy", "plain"), lambda layer: nn.SiLU(), False),
    "no GroupNorm+SiLU": (("energy", "plain"), lambda layer: nn.Identity(), False),
}
DIAGNOSTICS = ("SiLU only", "no GroupNorm+SiLU")  # not the same function: their own plain model counts


def variant(model: ImageGenerator, name: str) -> ImageGenerator:
    """A copy of ``model`` with GroupNorm+SiLU layers and memory format as the variant ``name`` has them."""
    _, replace, channels_last = VARIANTS[name]
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, GroupNormSiLU) and replace is not None:
                setattr(parent, child_name, replace(child))
    return model.to(memory_format=torch.channels_last) if channels_last else model  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per model (the median counts)")
    parser.add_argument("--channels", type=int, default=Settings.image_channels, help="UNet width")
    parser.add_argument("--batch", type=int, default=Settings.image_batch)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = dataclasses.replace(Settings(), image_channels=args.channels, image_batch=args.batch)
    digits = load_digits()
    images, labels = digits.images[: settings.image_batch], digits.labels[: settings.image_batch]
    built = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, method in (("energy", "energy"), ("plain", "vp_diffusion")):
            torch.manual_seed(settings.seed)
            config = image_config(settings, method, Path(folder) / method)
            built[name] = build_image_generator(config, (1, 8, 8), digits.levels, 10).train()
    built["energy"].classifier_weight = 0.0  # the parameterisation alone: the same loss as the plain model
    models = {(v, name): built[name] if v == "closed form" else variant(built[name], v)
              for v, (names, _, _) in VARIANTS.items() for name in names}

    def step(model: ImageGenerator) -> None:
        model(images, labels).backward()

    for model in models.values():
        for _ in range(3):
            step(model)
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in models}
    for _ in range(args.steps):
        for key, model in models.items():
            start = time.perf_counter()
            step(model)
            seconds[key].append(time.perf_counter() - start)
    median = {key: statistics.median(values) for key, values in seconds.items()}
    fastest = {key: min(values) for key, values in seconds.items()}
    result: dict = {"threads": args.threads, "batch": settings.image_batch,
                    "channels": settings.image_channels, "variants": {}}
    for v in VARIANTS:
        plain = (v, "plain") if v in DIAGNOSTICS else ("closed form", "plain")
        result["variants"][v] = {"energy_step_s": median[(v, "energy")], "plain_step_s": median[plain],
                                 "ratio": median[(v, "energy")] / median[plain],
                                 "ratio_of_fastest_steps": fastest[(v, "energy")] / fastest[plain]}
    for name in built:
        with profile() as prof:
            for _ in range(5):
                step(built[name])
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 1e3
        conv = sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTION_OPS) / 1e3
        result[name] = {"profiled_ms": total, "convolution_ms": conv, "other_ms": total - conv}
    e, p = result["energy"], result["plain"]
    keys = ("profiled_ms", "convolution_ms", "other_ms")
    result["ratio"] = {key: e[key] / p[key] for key in keys}
    result["ratio"]["median_step_s"] = result["variants"]["closed form"]["ratio"]
    print(f"digits UNet ({settings.image_channels} channels), batch {settings.image_batch}, "
          f"{args.threads} thread(s), median of {args.steps} alternating steps")
    print(f"{'s per step (median)':<34}{'energy':>10}{'plain':>10}{'ratio':>8}{'fastest':>9}")
    for v, row in result["variants"].items():
        goal = "   (target ≤ 2.2)" if v == "closed form" else ("   (diagnostic)" if v in DIAGNOSTICS else "")
        print(f"{v:<34}{row['energy_step_s']:>10.4f}{row['plain_step_s']:>10.4f}{row['ratio']:>8.2f}"
              f"{row['ratio_of_fastest_steps']:>9.2f}{goal}")
    print(f"{'closed form, 5 profiled steps, ms':<34}")
    for part, label in (("profiled_ms", "  all"), ("convolution_ms", "  convolution passes"),
                        ("other_ms", "  everything else")):
        print(f"{label:<34}{e[part]:>10.0f}{p[part]:>10.0f}{result['ratio'][part]:>8.2f}")
    write_text_atomic(RESULT, json.dumps(result, indent=2))
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
