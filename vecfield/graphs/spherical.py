"""Coordinates on the unit sphere and the node and edge features of GraphCast's graphs.

Conventions: latitude φ and longitude λ in degrees; position p = (cos φ cos λ, cos φ sin λ, sin φ).
The local frame of a node is (radial r̂, east ê, north n̂):
    r̂ = p,  ê = (−sin λ, cos λ, 0),  n̂ = (−sin φ cos λ, −sin φ sin λ, cos φ),
which is the frame reached by GraphCast's rotation Rz(−λ) then Ry(φ) that moves the node to
(lat 0, lon 0) = (1, 0, 0).
"""

import numpy as np
import torch


def lat_lon_to_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Unit vectors (N, 3) float64 from latitudes and longitudes (N,) in degrees."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    cos_phi = np.cos(phi)
    return np.stack([cos_phi * np.cos(lam), cos_phi * np.sin(lam), np.sin(phi)], axis=-1)


def xyz_to_lat_lon(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes in [−90, 90] and longitudes in [0, 360) (N,) in degrees of points (N, 3)."""
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    lat = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    lon = np.mod(np.rad2deg(np.arctan2(y, x)), 360.0)
    return lat, lon


def node_features(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Structural node features (N, 3) float32: [cos θ, cos λ, sin λ] with θ = 90° − φ the colatitude.

    These are GraphCast's features (model_utils.get_graph_spatial_features); its paper words the
    first one as the "cosine of latitude", but the code uses cos(colatitude) = sin φ, which, unlike
    cos φ, tells the hemispheres apart.
    """
    lam = np.deg2rad(lon)
    return np.stack([np.sin(np.deg2rad(lat)), np.cos(lam), np.sin(lam)], axis=-1).astype(np.float32)


def local_frames(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Rows (r̂, ê, n̂) of each node's local frame, (N, 3, 3) float64; lat, lon (N,) in degrees."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    sin_phi, cos_phi, sin_lam, cos_lam = np.sin(phi), np.cos(phi), np.sin(lam), np.cos(lam)
    frames = np.empty((lat.shape[0], 3, 3))
    frames[:, 0] = np.stack([cos_phi * cos_lam, cos_phi * sin_lam, sin_phi], axis=-1)
    frames[:, 1] = np.stack([-sin_lam, cos_lam, np.zeros_like(lam)], axis=-1)
    frames[:, 2] = np.stack([-sin_phi * cos_lam, -sin_phi * sin_lam, cos_phi], axis=-1)
    return frames


def edge_displacements(
    sender_xyz: np.ndarray, receiver_lat: np.ndarray, receiver_lon: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """Displacements d = p_sender − p_receiver (E, 3) in each receiver's local frame (r̂, ê, n̂).

    sender_xyz: (N_s, 3) positions of the sending node set; receiver_lat/lon: (N_r,) degrees (the
    receiver's longitude fixes its frame even at a pole); edges: (2, E) [senders; receivers].
    As p_receiver = r̂ ⟂ ê, n̂: d_r = p_sender·r̂ − 1, d_e = p_sender·ê, d_n = p_sender·n̂.
    """
    senders, receivers = torch.from_numpy(edges[0]), torch.from_numpy(edges[1])
    frames = torch.from_numpy(local_frames(receiver_lat, receiver_lon))
    # torch's multi-threaded gathers are several times faster than numpy fancy indexing here
    d = torch.einsum("eij,ej->ei", frames.index_select(0, receivers),
                     torch.from_numpy(np.ascontiguousarray(sender_xyz)).index_select(0, senders)).numpy()
    d[:, 0] -= 1.0
    return d


def edge_features(
    sender_xyz: np.ndarray, receiver_lat: np.ndarray, receiver_lon: np.ndarray, edges: np.ndarray
) -> np.ndarray:
    """GraphCast's edge features (E, 4) float32: [|d|, d_r, d_e, d_n] / max_edges |d|.

    d is the chord displacement of ``edge_displacements``; dividing by the longest edge of this
    edge set puts every feature in [−1, 1].
    """
    d = edge_displacements(sender_xyz, receiver_lat, receiver_lon, edges)
    length = np.linalg.norm(d, axis=1)
    scale = length.max() if length.size else 1.0
    return (np.concatenate([length[:, None], d], axis=1) / scale).astype(np.float32)
