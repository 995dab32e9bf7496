"""How strongly a freshly initialized GridMeshGNN couples a grid node to its neighbours on a regional box.

A limited-area model can only use boundary data (or any upstream information) through the mesh:
the grid node's own latent is a direct path, the neighbours' values reach it only through
grid → mesh → processor → mesh → grid. This measures, on an 8 × 12 box at 5.625°, the Jacobian
|∂ output[n] / ∂ input[m]| of an untrained network for m a node on the west edge, relative to
m = n (its own path), and prints log10 of the ratio for the nearest neighbours, for GraphCast's
own-node grid embedding and for a ``GridStencil`` of radius 1 (``model.grid_stencil: 1``), whose
first layer reads the 3 × 3 neighbourhood.

    PYTHONPATH=. python benchmarks/gnn_reach.py [--latent 32] [--layers 2]

Writes benchmarks/results/gnn_reach.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vecfield.files import write_text_atomic
from vecfield.graphs import GraphSpec, LatLonGrid, load_or_build_graph
from vecfield.nn.gnn import GridMeshGNN
from vecfield.nn.stencil import GridStencil

RESULTS = Path(__file__).resolve().parent / "results"
H, W, RESOLUTION = 8, 12, 5.625


def reach(mesh_level: int, latent: int, layers: int, stencil: int = 0, seed: int = 0) -> np.ndarray:
    """(H, W) |∂ output[n] / ∂ input[west-edge node]| divided by the node's own |∂ output / ∂ input|."""
    grid = LatLonGrid(-19.6875, -19.6875 + (H - 1) * RESOLUTION, 0.0, (W - 1) * RESOLUTION, RESOLUTION)
    graph = load_or_build_graph(GraphSpec(grid, mesh_min_level=0, mesh_max_level=mesh_level), None)
    torch.manual_seed(seed)
    net = GridMeshGNN(graph, 1, 1, latent=latent, processor_layers=layers, time_features=0,
                      stencil=GridStencil((H, W), stencil, periodic=False) if stencil else None)
    x = torch.randn(1, H * W, 1, requires_grad=True)
    source = (H // 2) * W
    out = net(x)
    rows = [torch.autograd.grad(out[0, n, 0], x, retain_graph=True)[0][0, source, 0].abs().item()
            for n in range(H * W)]
    jacobian = np.array(rows).reshape(H, W)
    return jacobian / jacobian[H // 2, 0]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    record: dict = {"box": f"{H} x {W} cells of {RESOLUTION} deg", "latent": args.latent,
                    "processor_layers": args.layers, "log10_relative_reach": {}}
    for stencil in (0, 1):
        for level in (3, 4, 5):
            ratio = reach(level, args.latent, args.layers, stencil)
            row = ratio[H // 2]
            neighbours = {f"{k} cells east": float(np.log10(row[k] + 1e-30)) for k in (1, 2, 4)}
            record["log10_relative_reach"][f"grid stencil {stencil}, mesh level {level}"] = neighbours
            print(f"grid stencil {stencil}, mesh level {level}: log10 |∂out/∂in| relative to the own path: "
                  + ", ".join(f"{name} {value:.1f}" for name, value in neighbours.items()))
    RESULTS.mkdir(exist_ok=True)
    print("wrote", write_text_atomic(RESULTS / "gnn_reach.json", json.dumps(record, indent=1)))
    return record


if __name__ == "__main__":
    main()
