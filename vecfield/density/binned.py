"""Binned (grouped) 1-D data tables such as Pearson's crabs."""

import csv
import math
import os
from pathlib import Path

import torch
from torch import Tensor


def read_binned_counts(path: str | os.PathLike[str]) -> tuple[Tensor, Tensor]:
    """Read a CSV of ``upper_bin_edge,count`` rows (first bin open below, ``Inf`` = open above).

    Returns edges (J+1,) float64 starting at −inf, and counts (J,) float64.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"binned table {path} does not exist (e.g. ../shared/data/pearson_crabs.csv)")
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [r for r in rows[1:] if r]
    if [h.strip() for h in header] != ["upper_bin_edge", "count"]:
        raise ValueError(f"{path}: expected the header 'upper_bin_edge,count', got {','.join(header)!r}")
    try:
        upper = [float(r[0]) for r in body]
        counts = [float(r[1]) for r in body]
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: every row must be 'upper_bin_edge,count' with numbers ({err})") from err
    edges = torch.tensor([-math.inf, *upper], dtype=torch.float64)
    return edges, torch.tensor(counts, dtype=torch.float64)
