"""Benchmark of GridMeshGNN training steps and of graph building (issue 4).

Configurations (grid 32×64 = WeatherBench2's 5.625° without poles, 8 processor layers,
20 → 10 channels, batch 1):  S: multimesh levels 1–4, latent 128;  M: levels 1–5, latent 256.

For each configuration, in a fresh subprocess (so peak RSS is clean): parameter count, median
forward time, median forward + backward + AdamW step time, peak RSS, the FLOPs of one step
(torch's FlopCounterMode) and the achieved GFLOP/s against a dense matmul doing the same FLOPs in
the same process (the roofline ratio). With ``--compile`` each configuration is measured a second time,
in its own fresh process, as ``torch.compile`` (inductor) compiles it, with the compile time (the
first step) reported apart; ``TrainerConfig.compile`` trains the same way. In the same run it
times the edge MLP with and without PhysicsNeMo's concat trick, the graph build at r = 6 on the
0.25° grid and its cache load.
Peers' figures (measured separately on the same 2-core machine, from issue 4) are printed
alongside with the ratios.

    PYTHONPATH=. python benchmarks/gnn_step.py            # full run
    PYTHONPATH=. python benchmarks/gnn_step.py --compile  # plus torch.compile'd steps
    PYTHONPATH=. python benchmarks/gnn_step.py --quick    # CI smoke test (< 1 min)

Results go to benchmarks/results/gnn_step.json (written atomically).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from vecfield.files import write_text_atomic
from vecfield.graphs import GraphSpec, LatLonGrid, build_graph, load_graph, save_graph
from vecfield.nn import GridMeshGNN
from vecfield.nn.message_passing import EdgeIndex, SplitMLP, gather
from vecfield.train import TrainerConfig
from vecfield.train.allocator import set_mmap_threshold

CONFIGS = {
    "S": {"mesh_levels": (1, 4), "latent": 128},
    "M": {"mesh_levels": (1, 5), "latent": 256},
}
LAYERS, IN_CHANNELS, OUT_CHANNELS, BATCH = 8, 20, 10, 1
# forward+backward time [s] and peak RSS [GB] of the peers on this machine (issue 4)
PEERS = {
    "anemoi-models 0.19": {"S": (0.733, 1.8), "M": (14.9, 7.8)},
    "PhysicsNeMo GraphCastNet 2.2 (concat trick)": {"S": (0.554, 1.5), "M": (12.9, 6.1)},
    "plain torch-geometric GraphCast": {"S": (0.682, 1.6), "M": (10.9, 6.1)},
}
GRAPH_BUILD_GOAL_S, CACHE_LOAD_GOAL_S, ANEMOI_BUILD_S = 12.0, 2.0, 12.6


def _median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _dense_gflops(flops: float, repeats: int) -> float:
    """GFLOP/s of a square fp32 matmul chain doing about ``flops`` floating-point operations."""
    n = 1024
    count = max(1, round(flops / (2 * n**3)))
    a, b = torch.randn(n, n), torch.randn(n, n)

    def chain() -> None:
        for _ in range(count):
            torch.mm(a, b)

    return 2 * n**3 * count / _median_time(chain, repeats, warmup=1) / 1e9


def measure_config(name: str, repeats: int, compiled: bool = False) -> dict:
    """All figures of one configuration, eager or ``torch.compile``'d; meant to run in a fresh process."""
    torch.manual_seed(0)
    config = CONFIGS[name]
    low, high = config["mesh_levels"]
    graph = build_graph(GraphSpec(LatLonGrid.global_grid(5.625, poles=False), low, high))
    net = GridMeshGNN(graph, IN_CHANNELS, OUT_CHANNELS, latent=config["latent"], processor_layers=LAYERS)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(BATCH, graph["grid"].num_nodes, IN_CHANNELS)
    target = torch.randn(BATCH, graph["grid"].num_nodes, OUT_CHANNELS)
    t = torch.rand(BATCH)
    model = torch.compile(net) if compiled else net

    def forward() -> None:
        with torch.no_grad():
            model(x, t)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(model(x, t), target).backward()
        optimizer.step()

    start = time.perf_counter()
    step()  # for a compiled model: the training graph's compilation
    first_step_s = time.perf_counter() - start
    forward_s = _median_time(forward, repeats)
    step_s = _median_time(step, repeats)
    with FlopCounterMode(display=False) as counter:
        F.mse_loss(net(x, t), target).backward()
    flops = counter.get_total_flops()
    dense = _dense_gflops(flops, max(3, repeats // 2))
    return {
        "config": name, "mode": "compiled" if compiled else "eager", "first_step_s": first_step_s,
        "grid_nodes": graph["grid"].num_nodes, "mesh_nodes": graph["mesh"].num_nodes,
        "mesh_edges": graph["mesh", "to", "mesh"].num_edges, "latent": config["latent"],
        "parameters": sum(p.numel() for p in net.parameters()),
        "forward_s": forward_s, "step_s": step_s, "step_gflop": flops / 1e9,
        "achieved_gflops": flops / step_s / 1e9, "dense_matmul_gflops": dense,
        "roofline_ratio": flops / step_s / 1e9 / dense,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "threads": torch.get_num_threads(),
    }


def concat_trick_comparison(name: str, repeats: int) -> dict:
    """Forward+backward time of one multimesh edge MLP of a configuration, with and without the trick."""
    low, high = CONFIGS[name]["mesh_levels"]
    graph = build_graph(GraphSpec(LatLonGrid.global_grid(5.625, poles=False), low, high))
    latent, num_mesh = CONFIGS[name]["latent"], graph["mesh"].num_nodes
    index = EdgeIndex.from_edges(*graph["mesh", "to", "mesh"].edge_index, num_mesh)
    senders, receivers = index.senders, index.receivers
    mlp = SplitMLP([latent, latent, latent], latent)
    nodes = torch.randn(1, num_mesh, latent, requires_grad=True)
    edges = torch.randn(1, senders.numel(), latent, requires_grad=True)
    joint_weight = torch.cat([layer.weight for layer in mlp.first], dim=1).detach().requires_grad_()

    def with_trick() -> None:
        a = mlp.project(0, edges) + gather(mlp.project(1, nodes), senders)
        mlp.finish(a + gather(mlp.project(2, nodes), receivers)).sum().backward()

    def without_trick() -> None:
        joint = torch.cat([edges, gather(nodes, senders), gather(nodes, receivers)], dim=-1)
        mlp.finish(F.linear(joint, joint_weight, mlp.first[0].bias)).sum().backward()

    return {"config": name, "edge_mlp_concat_trick_s": _median_time(with_trick, repeats),
            "edge_mlp_plain_concat_s": _median_time(without_trick, repeats)}


def graph_timings(resolution: float, max_level: int) -> dict:
    """Build time of the GraphCast graph and the load time of its cache file."""
    spec = GraphSpec(LatLonGrid.global_grid(resolution), 0, max_level)
    start = time.perf_counter()
    graph = build_graph(spec)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "graph.pt"
        save_graph(graph, path)
        start = time.perf_counter()
        load_graph(path)
        load_s = time.perf_counter() - start
    return {"graph": f"{resolution}° r={max_level}", "g2m_edges": graph["grid", "to", "mesh"].num_edges,
            "build_s": build_s, "cache_load_s": load_s}


def _in_subprocess(args: list[str], mmap_threshold: int | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if mmap_threshold is not None:  # as TrainerConfig.cpu_mmap_threshold does (vecfield/train/allocator.py)
        args = [*args, "--mmap-threshold", str(mmap_threshold)]
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _print_table(results: dict) -> None:
    malloc = results["mmap_threshold"]
    print(f"\nGridMeshGNN training step (median; {results['configs'][0]['threads']} threads; fp32; glibc "
          f"{'default malloc' if malloc is None else f'mmap threshold {malloc} B'})")
    head = (f"{'config':<7}{'mode':<10}{'params':>11}{'forward':>10}{'step':>10}{'peak RSS':>10}"
            f"{'GFLOP/step':>12}{'GFLOP/s':>9}{'dense':>8}{'roofline':>10}")
    print(head)
    for r in results["configs"]:
        print(f"{r['config']:<7}{r['mode']:<10}{r['parameters']:>11,}{r['forward_s'] * 1e3:>8.0f}ms"
              f"{r['step_s'] * 1e3:>8.0f}ms"
              f"{r['peak_rss_gb']:>8.2f}GB{r['step_gflop']:>12.1f}{r['achieved_gflops']:>9.1f}"
              f"{r['dense_matmul_gflops']:>8.1f}{r['roofline_ratio']:>10.2f}")
    for r in results["configs"]:
        if r["mode"] == "compiled":
            print(f"config {r['config']}: torch.compile's first step (compilation) took "
                  f"{r['first_step_s']:.0f} s")
    print("\nPeers (fwd+bwd on this machine, from issue 4) and our ratio (goal: time ≤ 0.5×, RSS ≤ 0.7×)")
    print(f"{'peer':<46}{'config':>7}{'mode':>10}{'time':>9}{'RSS':>8}{'ours/peer time':>16}"
          f"{'ours/peer RSS':>15}")
    for peer, figures in PEERS.items():
        for r in results["configs"]:
            peer_time, peer_rss = figures[r["config"]]
            print(f"{peer:<46}{r['config']:>7}{r['mode']:>10}{peer_time:>8.3f}s{peer_rss:>6.1f}GB"
                  f"{r['step_s'] / peer_time:>16.2f}{r['peak_rss_gb'] / peer_rss:>15.2f}")
    trick = results["concat_trick"]
    print(f"\nEdge MLP fwd+bwd (config {trick['config']}): concat trick "
          f"{trick['edge_mlp_concat_trick_s'] * 1e3:.0f} ms, "
          f"plain concatenation {trick['edge_mlp_plain_concat_s'] * 1e3:.0f} ms "
          f"(ratio {trick['edge_mlp_concat_trick_s'] / trick['edge_mlp_plain_concat_s']:.2f})")
    g = results["graph"]
    print(f"Graph {g['graph']}: build {g['build_s']:.1f} s (goal ≤ {GRAPH_BUILD_GOAL_S:g} s; anemoi-graphs "
          f"{ANEMOI_BUILD_S} s, ratio {g['build_s'] / ANEMOI_BUILD_S:.2f}), "
          f"cache load {g['cache_load_s']:.2f} s "
          f"(goal ≤ {CACHE_LOAD_GOAL_S:g} s), {g['g2m_edges']:,} grid→mesh edges")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="config S only, few repeats, 1° graph (CI smoke)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per figure (default 7, quick 2)")
    parser.add_argument("--worker", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--compile", action="store_true",
                        help="also measure every configuration under torch.compile (about 1.5 min of "
                             "compilation per configuration here)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help="comma-separated configurations to measure (default %(default)s)")
    parser.add_argument("--mmap-threshold", type=int, default=TrainerConfig.cpu_mmap_threshold,
                        help="fix glibc's mmap threshold at BYTES in the configurations' processes, as "
                             "TrainerConfig.cpu_mmap_threshold does on CPU (default: the Trainer's, "
                             "%(default)s = glibc's own)")
    parser.add_argument("--glibc-default-malloc", action="store_true",
                        help="leave glibc's dynamic mmap threshold alone (for comparison)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "gnn_step.json")
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 7)
    if args.glibc_default_malloc:
        args.mmap_threshold = None
    if args.worker:
        if args.mmap_threshold is not None:
            set_mmap_threshold(args.mmap_threshold)
        print(json.dumps(measure_config(args.worker, repeats, compiled=args.compiled)))
        return
    names = ["S"] if args.quick else args.configs.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configurations {unknown}; choose from {sorted(CONFIGS)}")
    modes = [[], ["--compiled"]] if args.compile and not args.quick else [[]]
    results = {
        "quick": args.quick,
        "mmap_threshold": args.mmap_threshold,
        "configs": [_in_subprocess(["--worker", name, "--repeats", str(repeats), *mode], args.mmap_threshold)
                    for name in names for mode in modes],
        "concat_trick": concat_trick_comparison("S" if args.quick else "M", repeats),
        "graph": graph_timings(1.0, 5) if args.quick else graph_timings(0.25, 6),
        "peers": {peer: {c: {"step_s": v[0], "peak_rss_gb": v[1]} for c, v in f.items()}
                  for peer, f in PEERS.items()},
    }
    _print_table(results)
    write_text_atomic(args.output, json.dumps(results, indent=2))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
