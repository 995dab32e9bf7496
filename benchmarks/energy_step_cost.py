"""Where the energy model's extra training cost goes: the double backward pass, by kind of operation.

    python benchmarks/energy_step_cost.py [--threads N] [--steps 15]

The two digits models of ``benchmarks/energy.py`` (the same UNet and batch; the energy model trains
through −∇ₓE, a double backward pass, with its classifier term off) step in alternation; the table
gives the median seconds per step and their ratio (the issue's target ≤ 2.2×), then a profile of 5
steps split into convolution passes (forward, backward and double backward: 6 per convolution
against 3, a FLOP floor of 2.0×) and everything else (mostly the composite second derivatives of
GroupNorm and SiLU). Writes benchmarks/results/energy_step_cost.json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from energy import Settings, image_config

from vecfield.files import write_text_atomic
from vecfield.images.datasets import load_digits
from vecfield.images.generator import build_image_generator

RESULT = Path(__file__).resolve().parent / "results" / "energy_step_cost.json"
CONVOLUTION_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward",
                   "aten::_convolution_double_backward", "aten::cudnn_convolution",
                   "aten::convolution_backward_overrideable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=15, help="timed steps per model (the median counts)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings, digits = Settings(), load_digits()
    images, labels = digits.images[: settings.image_batch], digits.labels[: settings.image_batch]
    models = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, method in (("energy", "energy"), ("plain", "vp_diffusion")):
            torch.manual_seed(settings.seed)
            config = image_config(settings, method, Path(folder) / method)
            models[name] = build_image_generator(config, (1, 8, 8), digits.levels, 10).train()
    models["energy"].classifier_weight = 0.0  # the parameterisation alone: the same loss as the plain model

    def step(name: str) -> None:
        models[name](images, labels).backward()

    for name in models:
        for _ in range(3):
            step(name)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.steps):
        for name in models:
            start = time.perf_counter()
            step(name)
            seconds[name].append(time.perf_counter() - start)
    result: dict = {"threads": args.threads, "batch": settings.image_batch,
                    "channels": settings.image_channels}
    for name in models:
        with profile() as prof:
            for _ in range(5):
                step(name)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) / 1e3
        conv = sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTION_OPS) / 1e3
        result[name] = {"median_step_s": float(torch.tensor(seconds[name]).median()),
                        "profiled_ms": total, "convolution_ms": conv, "other_ms": total - conv}
    e, p = result["energy"], result["plain"]
    keys = ("median_step_s", "profiled_ms", "convolution_ms", "other_ms")
    result["ratio"] = {key: e[key] / p[key] for key in keys}
    print(f"digits UNet ({settings.image_channels} channels), batch {settings.image_batch}, "
          f"{args.threads} thread(s)")
    print(f"{'':<28}{'energy':>10}{'plain':>10}{'ratio':>8}")
    print(f"{'median s per step':<28}{e['median_step_s']:>10.4f}{p['median_step_s']:>10.4f}"
          f"{result['ratio']['median_step_s']:>8.2f}   (target ≤ 2.2)")
    for key, label in (("profiled_ms", "5 profiled steps, ms"), ("convolution_ms", "  convolution passes"),
                       ("other_ms", "  everything else")):
        print(f"{label:<28}{e[key]:>10.0f}{p[key]:>10.0f}{result['ratio'][key]:>8.2f}")
    write_text_atomic(RESULT, json.dumps(result, indent=2))
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
