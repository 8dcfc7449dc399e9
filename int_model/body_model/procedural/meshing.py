"""The template mesh: the body surface meshed by surface nets on a rectilinear grid.

The grid is finer around the hands and the feet. The quad mesh is relaxed and projected back onto the
surface, then split into triangles and checked to be one closed, genus-0, outward-facing skin.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from .proportions import BodyProportions
from .skeleton import J, rest_joints, sole_y
from .surface import MESHING, body_field, project
from .sweeps import PartArrays


def _axis_coords(lo: float, hi: float, step: float, fine: list[tuple[float, float]], fine_step: float) -> np.ndarray:
    """Sorted grid coordinates from lo to hi at ``step``, with ``fine_step`` inside the fine intervals."""
    coords = list(np.arange(lo, hi + step, step))
    for f_lo, f_hi in fine:
        coords = [c for c in coords if not (f_lo < c < f_hi)]
        coords += list(np.arange(f_lo, f_hi, fine_step))
    coords = np.unique(np.round(np.array(coords), 9))
    return coords


def _grid_axes(parts: PartArrays, p: BodyProportions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rectilinear grid coordinates around the body: finer across the hands (x, y) and the feet (y).

    The x axis is symmetric and has no sample on the mid-plane, which keeps the mesh mirror-symmetric.
    """
    j = rest_joints(p)
    ends = parts.a + parts.e0 * parts.length[:, None]
    reach = np.maximum(np.maximum(parts.r1.max(1), parts.r2.max(1)), parts.caps.max(1))[:, None]
    lo = (np.minimum(parts.a, ends) - reach).min(0) - MESHING.padding
    hi = (np.maximum(parts.a, ends) + reach).max(0) + MESHING.padding
    hand_x = j[J["left_wrist"], 0] - MESHING.hand_band
    hand_y = j[J["left_wrist"], 1]
    sole = sole_y(p, j)
    step, fine = MESHING.spacing, MESHING.fine_spacing
    half_x = _axis_coords(step / 2, hi[0], step, [(hand_x, hi[0])], fine)
    xs = np.concatenate([-half_x[::-1], half_x])
    ys = _axis_coords(
        lo[1],
        hi[1],
        step,
        [(hand_y - MESHING.hand_band, hand_y + MESHING.hand_band), (lo[1], sole + MESHING.foot_band)],
        fine,
    )
    zs = _axis_coords(lo[2], hi[2], step, [], fine)
    return xs, ys, zs


_CUBE_CORNERS = np.array([(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def _ambiguous_masks() -> np.ndarray:
    """(256,) bool: inside-corner patterns of a grid cell that surface nets cannot mesh as one disc.

    Bad patterns: the inside or the outside corners are not edge-connected within the cell, or a face
    of the cell has inside corners on one diagonal and outside corners on the other.
    """
    neighbours = [[b for b in range(8) if np.abs(_CUBE_CORNERS[a] - _CUBE_CORNERS[b]).sum() == 1] for a in range(8)]

    def connected(members: list[int]) -> bool:
        if not members:
            return True
        seen, todo = {members[0]}, [members[0]]
        while todo:
            for b in neighbours[todo.pop()]:
                if b in members and b not in seen:
                    seen.add(b)
                    todo.append(b)
        return len(seen) == len(members)

    faces = [[c for c in range(8) if _CUBE_CORNERS[c][axis] == side] for axis in range(3) for side in (0, 1)]
    bad = np.zeros(256, dtype=bool)
    for mask in range(256):
        inside = [c for c in range(8) if mask >> c & 1]
        outside = [c for c in range(8) if not mask >> c & 1]
        face_ambiguous = any(
            sum(mask >> c & 1 for c in face) == 2 and not connected([c for c in face if mask >> c & 1])
            for face in faces
        )
        bad[mask] = face_ambiguous or not connected(inside) or not connected(outside)
    return bad


def _resolve_ambiguities(inside: np.ndarray, max_rounds: int = 10) -> np.ndarray:
    """Fill the grid cells whose corner pattern is ambiguous (thin gaps narrower than a cell) until none is left."""
    bad_table = _ambiguous_masks()
    inside = inside.copy()
    nx, ny, nz = inside.shape
    for _ in range(max_rounds):
        mask = np.zeros((nx - 1, ny - 1, nz - 1), dtype=np.int64)
        for bit, (i, j, k) in enumerate(_CUBE_CORNERS):
            mask |= inside[i : nx - 1 + i, j : ny - 1 + j, k : nz - 1 + k].astype(np.int64) << bit
        bad = bad_table[mask]
        if not bad.any():
            return inside
        for i, j, k in _CUBE_CORNERS:
            inside[i : nx - 1 + i, j : ny - 1 + j, k : nz - 1 + k] |= bad
    raise RuntimeError("procedural body mesh: could not resolve ambiguous grid cells")


def surface_nets(parts: PartArrays, p: BodyProportions) -> tuple[np.ndarray, np.ndarray]:
    """Quad mesh of the zero level set on a rectilinear grid: vertices (V, 3), quads (Q, 4), outward."""
    xs, ys, zs = _grid_axes(parts, p)
    grid = np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1)
    values = body_field(grid.reshape(-1, 3), parts).reshape(grid.shape[:3])
    inside = _resolve_ambiguities(values < 0.0)
    if inside[[0, -1]].any() or inside[:, [0, -1]].any() or inside[:, :, [0, -1]].any():
        raise RuntimeError("procedural body mesh: the body reaches the border of the grid")
    values = np.where(inside, np.minimum(values, -MESHING.filled_value), np.maximum(values, MESHING.filled_value))
    cell_shape = tuple(np.array(inside.shape) - 1)
    # one vertex per cell that the surface crosses: the mean of its edge crossings
    sums = np.zeros(cell_shape + (3,))
    counts = np.zeros(cell_shape)
    quads = []
    for axis in range(3):
        a_sl = [slice(None)] * 3
        b_sl = [slice(None)] * 3
        a_sl[axis], b_sl[axis] = slice(0, -1), slice(1, None)
        fa, fb = values[tuple(a_sl)], values[tuple(b_sl)]
        crossing = (fa < 0.0) != (fb < 0.0)
        t = np.where(crossing, fa / np.where(crossing, fa - fb, 1.0), 0.0)
        pa, pb = grid[tuple(a_sl)], grid[tuple(b_sl)]
        point = pa + t[..., None] * (pb - pa)
        idx = np.argwhere(crossing)
        others = [k for k in range(3) if k != axis]
        # the four cells around each crossing edge, counter-clockwise about +axis
        ring = []
        for d1, d2 in ((0, 0), (1, 0), (1, 1), (0, 1)):
            c = idx.copy()
            c[:, others[0]] -= 1 - d1
            c[:, others[1]] -= 1 - d2
            ring.append(c)
        for c in ring:
            np.add.at(sums, tuple(c.T), point[tuple(idx.T)])
            np.add.at(counts, tuple(c.T), 1.0)
        ring = np.stack(ring, axis=1)  # (E, 4, 3)
        # (others[0], others[1]) is (y, z), (z, x) reordered, or (x, y): fix handedness per axis
        ccw = (others[1] - others[0]) % 3 == 1
        if not ccw:
            ring = ring[:, ::-1]
        outward_positive = inside[tuple(idx.T)]
        ring = np.where(outward_positive[:, None, None], ring, ring[:, ::-1])
        quads.append(ring)
    quads = np.concatenate(quads)
    active = counts > 0
    cell_index = -np.ones(cell_shape, dtype=np.int64)
    cell_index[active] = np.arange(int(active.sum()))
    vertices = sums[active] / counts[active][:, None]
    return vertices, cell_index[quads[..., 0], quads[..., 1], quads[..., 2]]


def vertex_adjacency(num_vertices: int, faces: np.ndarray) -> scipy.sparse.csr_matrix:
    """Row-normalised vertex adjacency (V, V) from polygon faces (F, k)."""
    k = faces.shape[1]
    rows = np.concatenate([faces[:, i] for i in range(k)] + [faces[:, (i + 1) % k] for i in range(k)])
    cols = np.concatenate([faces[:, (i + 1) % k] for i in range(k)] + [faces[:, i] for i in range(k)])
    adj = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_vertices, num_vertices))
    adj.data[:] = 1.0
    degree = np.asarray(adj.sum(axis=1)).ravel()
    return scipy.sparse.diags(1.0 / degree) @ adj


def relax(vertices: np.ndarray, quads: np.ndarray, parts: PartArrays) -> np.ndarray:
    """Laplacian smoothing alternated with projection onto the surface (even, well-shaped faces)."""
    avg = vertex_adjacency(len(vertices), quads)
    x = project(vertices, parts, steps=3)
    for _ in range(MESHING.relax_iterations):
        x = x + MESHING.relax_step * (avg @ x - x)
        x = project(x, parts)
    return x


def triangulate(vertices: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal: (Q, 4) -> (2Q, 3), keeping the orientation."""
    v = vertices[quads]
    d02 = np.linalg.norm(v[:, 0] - v[:, 2], axis=1)
    d13 = np.linalg.norm(v[:, 1] - v[:, 3], axis=1)
    use02 = (d02 <= d13)[:, None]
    t1 = np.where(use02, quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    t2 = np.where(use02, quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return np.concatenate([t1, t2]).astype(np.int64)


def check_closed_surface(vertices: np.ndarray, faces: np.ndarray) -> None:
    """Raise unless faces form one closed, consistently oriented genus-0 surface with positive volume."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = {tuple(e) for e in edges.tolist()}
    if len(directed) != len(edges):
        raise RuntimeError("procedural body mesh: an edge is used twice in the same direction")
    if any((b, a) not in directed for a, b in directed):
        raise RuntimeError("procedural body mesh: the surface is not closed")
    euler = len(vertices) - len(edges) // 2 + len(faces)
    if euler != 2:
        raise RuntimeError(f"procedural body mesh: Euler characteristic {euler}, expected 2 (one sphere-like skin)")
    tri = vertices[faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    if volume <= 0:
        raise RuntimeError("procedural body mesh: faces point inwards")
