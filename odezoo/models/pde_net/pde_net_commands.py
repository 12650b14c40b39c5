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
    p.add_argument("--overwrite", action="store_true", help="replace an existing file of the same name")


def simulate_command(args):
    """Writes `args.n` simulated trajectories of `args.equation` to `args.out`; returns what it wrote."""
    # deferred: the CLI parses without TensorFlow
    from odezoo.data.pde import get_equation, simulate, trajectories_path, write_trajectories

    if args.n < 1 or args.steps < 0:
        raise OdezooError(f"--n must be >= 1 and --steps >= 0. Received: --n {args.n} --steps {args.steps}")
    get_equation(args.equation)  # an unknown name is refused before the file's name is made from it
    path = trajectories_path(args.out, f"{args.equation}_seed{args.seed}.npz", overwrite=args.overwrite)
    trajectories = simulate(
        args.equation, batch=args.n, steps=args.steps, seed=args.seed, noise=args.noise, progress=True
    )
    write_trajectories(trajectories, path)
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
