"""Simulated PDE trajectories for PDE-Net and PDE-Net 2.0 (docs/papers.md#pde-net-v1, #pde-net-2), in NumPy
float64.

Fields are arrays `(batch, rows, cols, channels)`: spatial axis 0 is the tensor's rows, axis 1
its columns, and `d_k` is the derivative along spatial axis k (the official codes' convention,
docs/papers.md#pde-net-moments). In x/y terms x runs along axis 1 and y along axis 0, so 2-D Burgers reads
`u_t = nu Lap(u) - u u_x - v u_y` with `u_x = d_1 u`, `u_y = d_0 u`.

Every simulator is deterministic given its seed. A `Trajectories` holds the observed frames
`u[b, s] = u(t0 + s dt)` on the coarse grid, with the noise model of the paper added.
"""

import functools
import math
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from odezoo._files import check_folder, check_output, write_output
from odezoo.errors import OdezooError, check_integer

TWO_PI = 2 * math.pi


@dataclass(frozen=True)
class Trajectories:
    """Observed frames `u` of shape `(batch, steps + 1, rows, cols, channels)`, spaced `dt` apart."""

    equation: str
    u: np.ndarray
    dt: float
    h: float
    t0: np.ndarray  # start time of each trajectory
    noise: float

    def save(self, path):
        np.savez_compressed(
            path, u=self.u, dt=self.dt, h=self.h, t0=self.t0, noise=self.noise, equation=self.equation
        )


def trajectories_path(folder, name, *, overwrite=False):
    """`folder/name`, checked before a simulation: an existing file there is refused unless `overwrite`
    (`odezoo simulate --overwrite`)."""
    folder = Path(folder)
    check_folder(folder, "--out")
    check_output(folder / name, overwrite, "Output", "trajectories file")
    return folder / name


def write_trajectories(trajectories, path):
    """Writes `trajectories` to `path` (`trajectories_path`) atomically and returns the path."""
    return write_output(path, trajectories.save)


def load_trajectories(path):
    """Reads a file written by `Trajectories.save` (or `odezoo simulate`)."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"a bare {type(data).__name__}, not an .npz archive")
        with data:
            return Trajectories(
                str(data["equation"]),
                data["u"],
                float(data["dt"]),
                float(data["h"]),
                data["t0"],
                float(data["noise"]),
            )
    except (OSError, KeyError, ValueError) as err:
        raise OdezooError(
            f"Cannot read trajectories from {str(path)!r} ({err}); write them with `odezoo simulate`."
        ) from None


# ----------------------------------------------------------------------------- initial fields


def band_limited_noise(rng, batch, n, cutoff, channels=1):
    """Real white noise on an `n x n` grid with every Fourier mode `|k_0| > c_0` or `|k_1| > c_1` removed.

    `cutoff` is an int or an array `(batch, 2)` of per-sample cut-offs along the two axes.
    """
    noise = rng.standard_normal((batch, n, n, channels))
    spectrum = np.fft.fft2(noise, axes=(1, 2))
    k = np.abs(np.fft.fftfreq(n, 1.0 / n))
    cutoff = np.broadcast_to(np.asarray(cutoff), (batch, 2))
    keep = (k[None, :, None] <= cutoff[:, 0, None, None]) & (k[None, None, :] <= cutoff[:, 1, None, None])
    return np.fft.ifft2(spectrum * keep[..., None], axes=(1, 2)).real


def _v2_initial(rng, batch, n, channels, offset=True):
    """PDE-Net 2.0: cut-off frequency 4, scaled to max |u| = 2, plus a constant U(-2, 2) per sample
    and channel."""
    u = band_limited_noise(rng, batch, n, 4, channels)
    u = 2 * u / np.max(np.abs(u), axis=(1, 2), keepdims=True)
    if offset:
        u = u + rng.uniform(-2, 2, (batch, 1, 1, channels))
    return u


def _v1_initial(rng, batch, n):
    """PDE-Net v1: white noise keeping |k| <= K, K ~ randint[4, 8) per axis, times 100."""
    return 100 * band_limited_noise(rng, batch, n, rng.integers(4, 8, (batch, 2)))


# ----------------------------------------------------------------------------- finite differences


def _wrap(u, r):
    """`u` (batch, rows, cols, channels) padded periodically by `r` points on both spatial axes."""
    import tensorflow as tf

    u = tf.concat([u[:, -r:], u, u[:, :r]], axis=1)
    return tf.concat([u[:, :, -r:], u, u[:, :, :r]], axis=2)


def _shifted(padded, r, s, axis):
    """From a field padded by `r`: the field at index + s along spatial `axis`."""
    rows, cols = padded.shape[1] - 2 * r, padded.shape[2] - 2 * r
    d0, d1 = (s, 0) if axis == 0 else (0, s)
    return padded[:, r + d0 : r + d0 + rows, r + d1 : r + d1 + cols]


def laplacian(u, h, padded=None, r=1):
    """Five-point Laplacian, periodic, O(h^2) (TensorFlow)."""
    p = _wrap(u, r) if padded is None else padded
    neighbours = sum(_shifted(p, r, s, axis) for s in (1, -1) for axis in (0, 1))
    return (neighbours - 4 * u) / h**2


def upwind_advection(u, velocity, axis, h, padded=None, r=2):
    """`velocity * d_axis u` with second-order one-sided differences taken upwind, periodic (TensorFlow)."""
    import tensorflow as tf

    p = _wrap(u, r) if padded is None else padded
    p1, p2, m1, m2 = (_shifted(p, r, s, axis) for s in (1, 2, -1, -2))
    upwind = tf.where(velocity > 0, 3 * u - 4 * m1 + m2, -3 * u + 4 * p1 - p2)
    return velocity * upwind / (2 * h)


def heun(rhs, u, t_end, max_dt, *, pieces=1, progress=None):
    """Integrates `u' = rhs(u)` to `t_end` with Heun's RK2 in equal steps of at most `max_dt`.

    `rhs` maps TensorFlow tensors; the loop runs as one XLA-compiled `tf.while_loop`, called `pieces`
    times on consecutive runs of the steps (the same result), and `progress(1)` after each.
    """
    import tensorflow as tf

    steps = math.ceil(t_end / max_dt - 1e-9)
    if steps <= 0:
        return u
    loop, dt, u = _heun_loop(rhs), tf.constant(t_end / steps, tf.float64), tf.constant(u, tf.float64)
    for part in np.array_split(np.arange(steps), pieces):
        u = loop(u, tf.constant(len(part)), dt)
        if progress:
            progress(1)
    return u.numpy()


_HEUN_LOOPS = weakref.WeakKeyDictionary()  # one compiled loop per right-hand side


def _heun_loop(rhs):
    import tensorflow as tf

    if rhs not in _HEUN_LOOPS:

        @tf.function(jit_compile=True)
        def loop(u, steps, dt):
            def body(i, u):
                k1 = rhs(u)
                k2 = rhs(u + dt * k1)
                return i + 1, u + 0.5 * dt * (k1 + k2)

            return tf.while_loop(lambda i, u: i < steps, body, (tf.constant(0), u))[1]

        _HEUN_LOOPS[rhs] = loop
    return _HEUN_LOOPS[rhs]


# ----------------------------------------------------------------------------- right-hand sides


def burgers_rhs(nu, h):
    """2-D Burgers `u_t = nu Lap u - u d_1 u - v d_0 u` (same for v); channel 0 is u, channel 1 is v."""

    def rhs(w):
        u, v, p = w[..., :1], w[..., 1:], _wrap(w, 2)
        advection = upwind_advection(w, u, 1, h, padded=p) + upwind_advection(w, v, 0, h, padded=p)
        return nu * laplacian(w, h, padded=p, r=2) - advection

    return rhs


def heat_rhs(nu, h):
    """`u_t = nu Lap u`."""
    return lambda u: nu * laplacian(u, h)


def cdr_rhs(nu, beta, h):
    """Convection-diffusion-reaction (docs/papers.md#pde-net-2), `A = u^2 + v^2`:
    `u_t = nu Lap u - u u_x - v u_y + (1 - A) u + beta A v`,
    `v_t = nu Lap v - u v_x - v v_y - beta A u + (1 - A) v`."""
    import tensorflow as tf

    transport = burgers_rhs(nu, h)

    def rhs(w):
        u, v = w[..., :1], w[..., 1:]
        a = u**2 + v**2
        reaction = tf.concat([(1 - a) * u + beta * a * v, -beta * a * u + (1 - a) * v], axis=-1)
        return transport(w) + reaction

    return rhs


def linear_cd_coefficients(c0, c1):
    """Coefficients of `u_t = A d_0 u + B d_1 u + 0.2 d_0^2 u + 0.3 d_1^2 u` at coordinates `c0, c1`
    (along axes 0 and 1), as coded officially: `A = 0.5 (cos c0 + c1 (2 pi - c1) sin c1) + 0.6`,
    `B = 2 (cos c0 + sin c1) + 0.8`. Returns `{(i, j): field}` for the four derivative orders."""
    a = 0.5 * (np.cos(c0) + c1 * (TWO_PI - c1) * np.sin(c1)) + 0.6
    b = 2 * (np.cos(c0) + np.sin(c1)) + 0.8
    ones = np.ones_like(a)
    return {(1, 0): a, (0, 1): b, (2, 0): 0.2 * ones, (0, 2): 0.3 * ones}


def grid_coordinates(n):
    """`(c0, c1)`: the coordinates of an `n x n` periodic grid on [0, 2 pi)^2 along axes 0 and 1."""
    c = np.arange(n) * TWO_PI / n
    return np.meshgrid(c, c, indexing="ij")


def spectral_linear_cd(u, t_end, *, modes=30, work=48, max_dt=5e-3, coefficients=None):
    """Pseudo-spectral RK4 solution of the v1 linear convection-diffusion equation, periodic on [0, 2 pi)^2.

    `u` is `(batch, n, n, 1)` on the fine grid. The solution keeps the `modes x modes` lowest Fourier
    modes; derivatives are exact on them, and the products with the variable coefficients are formed
    on a `work x work` grid (`work >= 3/2 modes`: the official de-aliased convolution) and projected
    back. The result is evaluated on the input grid. `coefficients` maps orders to callables of the
    coordinates `(c0, c1)` (default: `linear_cd_coefficients`; the axis-convention test swaps them).
    """
    n = u.shape[1]
    k = np.fft.fftfreq(work, 1.0 / work)
    keep = np.abs(k) < modes / 2
    mask = (keep[:, None] & keep[None, :])[None, :, :, None]
    c = np.arange(work) * TWO_PI / work
    fields = (coefficients or linear_cd_coefficients)(*np.meshgrid(c, c, indexing="ij"))
    ik0, ik1 = 1j * k[None, :, None, None], 1j * k[None, None, :, None]
    derivative = {(1, 0): ik0, (0, 1): ik1, (2, 0): ik0**2, (0, 2): ik1**2}

    def rhs(spectrum):
        total = 0
        for order, values in fields.items():
            term = np.fft.ifft2(derivative[order] * spectrum, axes=(1, 2)).real
            total = total + values[None, :, :, None] * term
        return np.fft.fft2(total, axes=(1, 2)) * mask

    spectrum = _resample_spectrum(np.fft.fft2(u, axes=(1, 2)), work) * mask
    steps = math.ceil(t_end / max_dt - 1e-9)
    dt = t_end / max(steps, 1)
    for _ in range(steps):
        k1 = rhs(spectrum)
        k2 = rhs(spectrum + 0.5 * dt * k1)
        k3 = rhs(spectrum + 0.5 * dt * k2)
        k4 = rhs(spectrum + dt * k3)
        spectrum = spectrum + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return np.fft.ifft2(_resample_spectrum(spectrum, n), axes=(1, 2)).real


def _resample_spectrum(spectrum, size):
    """The DFT of the same band-limited field on a `size x size` grid (modes below both Nyquists)."""
    n = spectrum.shape[1]
    k = np.fft.fftfreq(n, 1.0 / n).astype(int)
    low = np.abs(k) < min(n, size) / 2
    out = np.zeros((spectrum.shape[0], size, size, spectrum.shape[3]), complex)
    rows = k[low] % size
    out[:, rows[:, None], rows[None, :]] = spectrum[:, low][:, :, low]
    return out * (size / n) ** 2


def dirichlet_laplacian(u, h):
    """Five-point Laplacian with zero values outside the grid (homogeneous Dirichlet)."""
    p = np.pad(u, [(0, 0), (1, 1), (1, 1), (0, 0)])
    return (p[:, 2:, 1:-1] + p[:, :-2, 1:-1] + p[:, 1:-1, 2:] + p[:, 1:-1, :-2] - 4 * u) / h**2


def forward_euler(rhs, u, t_end, max_dt):
    """Integrates `u' = rhs(u)` to `t_end` with forward Euler in equal steps of at most `max_dt`."""
    steps = math.ceil(t_end / max_dt - 1e-9)
    dt = t_end / max(steps, 1)
    for _ in range(steps):
        u = u + dt * rhs(u)
    return u


# ----------------------------------------------------------------------------- equations


@dataclass(frozen=True)
class Equation:
    """One data-generating setting of docs/papers.md#pde-net-v1 / #pde-net-2 (official values unless the
    docstring says)."""

    name: str
    version: int  # 1: PDE-Net, 2: PDE-Net 2.0
    channels: tuple  # channel names
    truth: dict  # channel -> {term: coefficient}, or a string for terms no polynomial describes
    fine: int  # fine-grid points per axis
    zoom: int  # fine points per observed point
    dt: float  # delta t between observed frames
    max_dt: float  # solver step bound
    noise: float  # noise level relative to the std of the initial frame
    batch: int  # trajectories per training stage (official)
    start_time: float = 0.0  # half of each batch is first evolved this long
    boundary: str = "periodic"
    params: dict = field(default_factory=dict)

    @property
    def grid(self):
        return self.fine // self.zoom

    @property
    def h(self):
        """Observed grid spacing; a Dirichlet grid holds interior points only."""
        return TWO_PI / (self.grid + (1 if self.boundary == "dirichlet" else 0))

    @property
    def fine_h(self):
        return TWO_PI / (self.fine + (1 if self.boundary == "dirichlet" else 0))


EQUATIONS = {
    "burgers2d": Equation(
        "burgers2d",
        2,
        ("u", "v"),
        {
            "u": {"u_xx": 0.05, "u_yy": 0.05, "u*u_x": -1.0, "v*u_y": -1.0},
            "v": {"v_xx": 0.05, "v_yy": 0.05, "u*v_x": -1.0, "v*v_y": -1.0},
        },
        fine=128,
        zoom=4,
        dt=0.01,
        max_dt=1 / 1600,
        noise=1e-3,
        batch=50,
        start_time=1.0,
        params={"nu": 0.05},
    ),
    "heat": Equation(
        "heat",
        2,
        ("u",),
        {"u": {"u_xx": 0.1, "u_yy": 0.1}},
        fine=128,
        zoom=4,
        dt=0.01,
        max_dt=1 / 1600,
        noise=1e-3,
        batch=28,
        params={"nu": 0.1},
    ),
    "cdr": Equation(
        "cdr",
        2,
        ("u", "v"),
        {
            "u": {
                "u_xx": 0.1,
                "u_yy": 0.1,
                "u*u_x": -1.0,
                "v*u_y": -1.0,
                "u": 1.0,
                "u**3": -1.0,
                "u*v**2": -1.0,
                "u**2*v": 1.0,
                "v**3": 1.0,
            },
            "v": {
                "v_xx": 0.1,
                "v_yy": 0.1,
                "u*v_x": -1.0,
                "v*v_y": -1.0,
                "v": 1.0,
                "v**3": -1.0,
                "u**2*v": -1.0,
                "u*v**2": -1.0,
                "u**3": -1.0,
            },
        },
        fine=128,
        zoom=4,
        dt=0.01,
        max_dt=1e-4,
        noise=1e-3,
        batch=50,
        params={"nu": 0.1, "beta": 1.0},
    ),
    "linear_cd": Equation(
        "linear_cd",
        1,
        ("u",),
        {
            "u": {
                "A(y,x)*u_y": "0.5*(cos(y) + x*(2*pi - x)*sin(x)) + 0.6",
                "B(y,x)*u_x": "2*(cos(y) + sin(x)) + 0.8",
                "u_yy": 0.2,
                "u_xx": 0.3,
            }
        },
        fine=250,
        zoom=5,
        dt=0.015,
        max_dt=5e-3,
        noise=0.015,
        batch=24,
    ),
    "nonlinear_diffusion": Equation(
        "nonlinear_diffusion",
        1,
        ("u",),
        {"u": {"u_xx": 0.3, "u_yy": 0.3, "sin(u)": 15.0}},
        fine=249,
        zoom=5,
        dt=0.01,
        max_dt=(TWO_PI / 250) ** 2 / (4 * 0.3),
        noise=0.01,
        batch=24,
        boundary="dirichlet",
        params={"nu": 0.3, "source": 15.0},
    ),
}


def get_equation(name):
    try:
        return EQUATIONS[name]
    except KeyError:
        raise OdezooError(f"Unknown equation {name!r}; odezoo simulates {sorted(EQUATIONS)}.") from None


def _initial(eq, rng, batch):
    if eq.version == 1:
        u = _v1_initial(rng, batch, eq.fine)
        if eq.boundary == "dirichlet":
            x = np.arange(1, eq.fine + 1) / (eq.fine + 1)
            taper = 4 * x * (1 - x)
            u = u * taper[None, :, None, None] * taper[None, None, :, None]
        return u
    return _v2_initial(rng, batch, eq.fine, len(eq.channels), offset=eq.name != "cdr")


def _evolve(eq, u, t_end, *, pieces=1, progress=None):
    """`u` evolved by `t_end`; `progress` is called with `pieces` in all (per piece where the solver can)."""
    if eq.version == 2:
        return heun(_rhs_of(eq.name), u, t_end, eq.max_dt, pieces=pieces, progress=progress)
    if eq.name == "linear_cd":
        u = spectral_linear_cd(u, t_end, max_dt=eq.max_dt)
    else:
        nu, source, h = eq.params["nu"], eq.params["source"], eq.fine_h
        u = forward_euler(lambda w: nu * dirichlet_laplacian(w, h) + source * np.sin(w), u, t_end, eq.max_dt)
    if progress:
        progress(pieces)
    return u


@functools.cache
def _rhs_of(name):
    eq, h = EQUATIONS[name], EQUATIONS[name].fine_h
    if name == "burgers2d":
        return burgers_rhs(eq.params["nu"], h)
    if name == "heat":
        return heat_rhs(eq.params["nu"], h)
    return cdr_rhs(eq.params["nu"], eq.params["beta"], h)


def _observe(eq, u, offsets):
    z = eq.zoom
    if eq.boundary == "dirichlet":  # interior fine points z-1, 2z-1, ... are the coarse grid's
        return u[:, z - 1 :: z, z - 1 :: z]
    rows = (np.arange(eq.grid) * z)[None, :] + offsets[:, :1]
    cols = (np.arange(eq.grid) * z)[None, :] + offsets[:, 1:]
    b = np.arange(u.shape[0])[:, None, None]
    return u[b, rows[:, :, None], cols[:, None, :]]


def _level(name, value):
    """`value` as a float if it is a finite number >= 0, else raises naming the argument `name`."""
    try:
        level = float(value)
    except (TypeError, ValueError):
        level = math.nan
    if not 0 <= level < math.inf:  # NaN too
        raise OdezooError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return level


def simulate(equation, *, batch=None, steps=1, seed=0, noise=None, start_time=None, progress=False):
    """Simulates `batch` trajectories of `steps + 1` observed frames `dt` apart.

    Args:
        equation: a name in `EQUATIONS`.
        batch: number of trajectories (default: the official training batch).
        steps: number of `dt` intervals after the first frame.
        seed: seed of the initial fields, the sub-sampling offsets (v1) and the noise.
        noise: noise level relative to each sample's initial std (default: the official one; 0: clean).
        start_time: half of the trajectories are first evolved this long (default: the official one).
        progress: show a bar with the time left on stderr when it is a terminal, in steps of `dt` (the
            start counts as `start_time / dt` of them).

    Returns:
        `Trajectories`; on the observed grid (`equation.grid` points per axis, `h = 2 pi / grid`).
        `u` is `(batch, steps + 1, y, x, channels)`: x runs along the columns (axis 3 of `u`, axis 2
        of one frame batch), y along the rows, as `np.meshgrid(x, y)` lays a field out; a field
        built with `indexing="ij"` is the transpose, which a model reads as another PDE.
    """
    eq = get_equation(equation)
    batch = check_integer("batch", eq.batch if batch is None else batch, 1)
    steps, seed = check_integer("steps", steps), check_integer("seed", seed)
    level = _level("noise", eq.noise if noise is None else noise)
    start = _level("start_time", eq.start_time if start_time is None else start_time)
    rng = np.random.default_rng(seed)
    try:
        u = _initial(eq, rng, batch)
    except MemoryError as error:
        raise OdezooError(
            f"{batch} {eq.name} trajectories do not fit in memory ({error}); simulate fewer, e.g. in "
            f"several runs with different seeds. Received: batch={batch}"
        ) from None
    t0 = np.where(np.arange(batch) < batch // 2, start, 0.0) if start > 0 else np.zeros(batch)
    started = t0 > 0
    head_start = max(1, round(start / eq.dt)) if started.any() else 0
    bar = tqdm(
        total=head_start + steps,
        desc=f"simulate {batch} {eq.name} trajectories",
        unit="step",
        disable=None if progress else True,
    )
    with bar:
        if head_start:
            u[started] = _evolve(eq, u[started], start, pieces=head_start, progress=bar.update)
        offsets = rng.integers(0, eq.zoom, (batch, 2)) if eq.version == 1 else np.zeros((batch, 2), int)
        frames = [_observe(eq, u, offsets)]
        for _ in range(steps):
            u = _evolve(eq, u, eq.dt, progress=bar.update)
            frames.append(_observe(eq, u, offsets))
    clean = np.stack(frames, axis=1)
    if level > 0:
        scale = level * np.std(clean[:, 0], axis=(1, 2), keepdims=True)[:, None]
        clean = clean + scale * rng.standard_normal(clean.shape)
    return Trajectories(eq.name, clean, eq.dt, eq.h, t0, level)
