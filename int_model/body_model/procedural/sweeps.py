"""Elliptic sweeps, the shape every body part is made of, as records and as arrays with local coordinates.

A sweep runs along an axis from a to b. Its cross-section is an ellipse with radii r1 (along e1) and r2
(along e2) that change linearly from a to b; past either end it closes with an ellipsoidal cap.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sweep:
    """One body part: label (SMPL joint that moves it), axis a -> b, radii (r1, r2) at a and b, caps."""

    label: int
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radii_a: tuple[float, float]
    radii_b: tuple[float, float]
    cap_a: float
    cap_b: float
    ref: tuple[float, float, float]  # direction of the r1 radius (orthogonalised against the axis)


ELLIPSOID_AXIS_LENGTH = 1e-3  # an ellipsoid is a sweep this short


def ellipsoid(label: int, centre: np.ndarray, *, radii: tuple[float, float, float]) -> Sweep:
    """Axis-aligned ellipsoid with radii (rx, ry, rz)."""
    rx, ry, rz = radii
    centre = np.asarray(centre, dtype=np.float64)
    return Sweep(
        label,
        tuple(centre),
        tuple(centre + [0.0, ELLIPSOID_AXIS_LENGTH, 0.0]),
        (rx, rz),
        (rx, rz),
        ry,
        ry,
        (1.0, 0.0, 0.0),
    )


def sweep(
    label: int,
    a: np.ndarray,
    b: np.ndarray,
    *,
    radii_a: tuple[float, float],
    radii_b: tuple[float, float],
    ref: tuple[float, float, float],
    caps: tuple[float, float] | None = None,
) -> Sweep:
    """Sweep from a to b; ``caps`` default to the smaller radius at each end."""
    caps = caps if caps is not None else (min(radii_a), min(radii_b))
    return Sweep(
        label,
        tuple(np.asarray(a, float)),
        tuple(np.asarray(b, float)),
        tuple(radii_a),
        tuple(radii_b),
        caps[0],
        caps[1],
        ref,
    )


X_AXIS, Y_AXIS, Z_AXIS = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class PartArrays:
    """Sweeps as arrays (P parts): origin a (P,3), unit frame e0/e1/e2 (P,3), length (P,), radii, caps."""

    label: np.ndarray
    a: np.ndarray
    e0: np.ndarray
    e1: np.ndarray
    e2: np.ndarray
    length: np.ndarray
    r1: np.ndarray  # (P, 2): at a, at b
    r2: np.ndarray
    caps: np.ndarray  # (P, 2)

    def take(self, index: int) -> PartArrays:
        """The single part ``index`` as a one-part PartArrays."""
        return PartArrays(**{f.name: getattr(self, f.name)[index : index + 1] for f in dataclasses.fields(self)})

    @classmethod
    def from_parts(cls, parts: list[Sweep]) -> PartArrays:
        a = np.array([s.a for s in parts])
        b = np.array([s.b for s in parts])
        axis = b - a
        length = np.linalg.norm(axis, axis=1)
        e0 = axis / length[:, None]
        ref = np.array([s.ref for s in parts])
        e1 = ref - np.sum(ref * e0, axis=1, keepdims=True) * e0
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        e2 = np.cross(e0, e1)
        return cls(
            label=np.array([s.label for s in parts]),
            a=a,
            e0=e0,
            e1=e1,
            e2=e2,
            length=length,
            r1=np.array([[s.radii_a[0], s.radii_b[0]] for s in parts]),
            r2=np.array([[s.radii_a[1], s.radii_b[1]] for s in parts]),
            caps=np.array([[s.cap_a, s.cap_b] for s in parts]),
        )


@dataclass(frozen=True)
class LocalCoords:
    """Points in each part's normalised frame (N, P): axial fraction s, and u1, u2, w in units of radii."""

    s: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    w: np.ndarray


def to_local(points: np.ndarray, parts: PartArrays) -> tuple[LocalCoords, np.ndarray]:
    """Local coordinates of points (N,3) in every part, and the approximate signed distances (N, P)."""
    z = points @ parts.e0.T - np.sum(parts.a * parts.e0, axis=1)
    p1 = points @ parts.e1.T - np.sum(parts.a * parts.e1, axis=1)
    p2 = points @ parts.e2.T - np.sum(parts.a * parts.e2, axis=1)
    s = np.clip(z / parts.length, 0.0, 1.0)
    w = z - s * parts.length
    r1 = parts.r1[:, 0] + s * (parts.r1[:, 1] - parts.r1[:, 0])
    r2 = parts.r2[:, 0] + s * (parts.r2[:, 1] - parts.r2[:, 0])
    cap = np.where(w < 0.0, parts.caps[:, 0], parts.caps[:, 1])
    u1, u2, uw = p1 / r1, p2 / r2, w / cap
    q = np.sqrt(u1 * u1 + u2 * u2 + uw * uw)
    rho = np.sqrt(p1 * p1 + p2 * p2 + w * w)
    # distance along the ray from the axis point: rho * (1 - 1/q); on the axis itself, minus the smallest radius
    on_axis = q < 1e-9
    distance = np.where(on_axis, -np.minimum(np.minimum(r1, r2), cap), rho - rho / np.where(on_axis, 1.0, q))
    return LocalCoords(s=s, u1=u1, u2=u2, w=uw), distance


def from_local(coords: LocalCoords, parts: PartArrays) -> np.ndarray:
    """Inverse of :func:`to_local` for another set of parts with the same structure: (N, P, 3)."""
    s = coords.s
    r1 = parts.r1[:, 0] + s * (parts.r1[:, 1] - parts.r1[:, 0])
    r2 = parts.r2[:, 0] + s * (parts.r2[:, 1] - parts.r2[:, 0])
    cap = np.where(coords.w < 0.0, parts.caps[:, 0], parts.caps[:, 1])
    axial = s * parts.length + coords.w * cap
    return (
        parts.a[None]
        + axial[..., None] * parts.e0[None]
        + (coords.u1 * r1)[..., None] * parts.e1[None]
        + (coords.u2 * r2)[..., None] * parts.e2[None]
    )
