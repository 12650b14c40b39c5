"""`odezoo simulate`: the PDE family's command (see `odezoo.commands`)."""

from odezoo.commands import Command
from odezoo.errors import OdezooError


def _arguments(p):
    p.add_argument("equation", help="burgers2d, heat, cdr, linear_cd or nonlinear_diffusion")
    p.add_argument("--n", type=int, default=8, help="number of trajectories")
    p.add_argument(
        "--steps", type=int, default=20, help="time steps (of the equation's dt) after the first frame"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--noise", type=float, help="noise level relative to each initial frame's std (default: the paper's)"
    )
    p.add_argument("--out", required=True, help="output folder")


def simulate_command(args):
    """Writes `args.n` simulated trajectories of `args.equation` to `args.out`; returns what it wrote."""
    from odezoo.data.pde import simulate, write_trajectories  # deferred: the CLI parses without TensorFlow

    if args.n < 1 or args.steps < 0:
        raise OdezooError(f"--n must be >= 1 and --steps >= 0. Received: --n {args.n} --steps {args.steps}")
    trajectories = simulate(
        args.equation, batch=args.n, steps=args.steps, seed=args.seed, noise=args.noise, progress=True
    )
    path = write_trajectories(trajectories, args.out, f"{trajectories.equation}_seed{args.seed}.npz")
    return {
        "path": str(path),
        "shape": list(trajectories.u.shape),
        "dt": trajectories.dt,
        "h": trajectories.h,
        "noise": trajectories.noise,
    }


COMMANDS = (
    Command(
        "simulate",
        "write simulated PDE trajectories (.npz) for training",
        _arguments,
        "odezoo.models.pde_net.pde_net_commands:simulate_command",
    ),
)
