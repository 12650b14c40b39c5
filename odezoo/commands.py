"""Commands a family brings to the CLI, declared by the family and dispatched without naming it.

A family folder may hold `<family>_commands.py`, importing only the standard library and this module
at the top (the CLI reads it to build its parser, before TensorFlow starts), with

- `COMMANDS`: `Command`s, each a subcommand of its own (`odezoo simulate ...`);
- `CONVERTERS`: `Command`s that are the frameworks of `odezoo convert <framework> ...`.

`run` names the function that carries the command out as `"module:function"`; it is imported only
when the command runs, and receives the parsed `argparse.Namespace`. A command `on_preset` takes a
preset (a name, folder or hf:// repo, and `--revision`) as its first argument: the CLI loads it and
passes `model=` and `metadata=` as well. What `run` returns (JSON-able) is printed.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A subcommand: its name and help, a function adding its arguments to its parser, what runs it."""

    name: str
    help: str
    arguments: Callable
    run: str  # "module:function"
    on_preset: bool = False

    def add_to(self, subparsers):
        """Adds the command's parser (with the preset argument of a command `on_preset`)."""
        parser = subparsers.add_parser(self.name, help=self.help)
        if self.on_preset:
            parser.add_argument("preset", help="preset name, local preset folder or hf://org/repo")
            parser.add_argument("--revision", help="Hub branch, tag or commit")
        self.arguments(parser)
        return parser

    def function(self):
        """The function that runs the command (its module imported now)."""
        module, function = self.run.split(":")
        return getattr(importlib.import_module(module), function)
