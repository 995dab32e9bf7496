"""Training-step time beside a busy core: why pipelines set OMP_WAIT_POLICY=PASSIVE (issue 22 §6).

A small forecaster (the test wave world: 16 × 32 grid, mesh levels 0–2, latent 48, 2 processor
layers, batch 4) takes ``--steps`` training steps (forward, backward, AdamW) in a fresh process per
setting: torch threads 2 with OpenMP's default wait policy, 2 with OMP_WAIT_POLICY=PASSIVE, and 1
thread; first alone, then beside a pure-Python busy loop (another process holding one core).
Prints the mean milliseconds per step of each.

    PYTHONPATH=. python benchmarks/thread_contention.py [--steps 20]
"""

import argparse
import os
import subprocess
import sys
import time

SETTINGS = (("2 threads, default wait policy", 2, None), ("2 threads, PASSIVE", 2, "PASSIVE"),
            ("1 thread", 1, None))


def _child(threads: int, steps: int) -> None:
    """In this process: time ``steps`` training steps of the small forecaster; print ms/step."""
    from dataclasses import replace

    import torch
    from torch.utils.data import default_collate

    import tests.forecast.helpers as helpers
    from vecfield.forecast.task import ForecastTask

    torch.set_num_threads(threads)
    helpers.TINY_MODEL = replace(helpers.TINY_MODEL, latent=48, mesh_max_level=2, processor_layers=2)
    spec, windows, _ = helpers.tiny_spec(helpers.wave_dataset(days=4))
    torch.manual_seed(0)
    model = spec.build()
    task = ForecastTask(windows.state_layout.channels, 6, spec.normalization.state_std)
    batch = default_collate([windows[i] for i in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4)

    def step() -> None:
        optimizer.zero_grad()
        task.loss(model, batch).backward()
        optimizer.step()

    for _ in range(3):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{(time.perf_counter() - start) / steps * 1000:.1f}")


def main() -> None:
    """Run every setting alone and beside a busy loop; print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.steps)
        return
    for situation in ("alone", "beside a busy loop"):
        busy = None
        if situation != "alone":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            for name, threads, policy in SETTINGS:
                env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
                if policy is not None:
                    env["OMP_WAIT_POLICY"] = policy
                result = subprocess.run(
                    [sys.executable, __file__, "--child", str(threads), "--steps", str(args.steps)],
                    env=env, capture_output=True, text=True, check=True,
                )
                print(f"{situation:>20} | {name:32} | {result.stdout.strip():>8} ms/step", flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()


if __name__ == "__main__":
    main()
