"""Evaluation through the model's task (what `odezoo eval` runs): every task has its own metrics and
options, and options of another task are refused instead of ignored."""

from odezoo.errors import OdezooError
from odezoo.tasks.base import flag


def check_options(task, options, kind, who):
    """Raises for an option `task` does not take (`kind` is "eval" or "predict"), or out of range."""
    declared = {o.name: o for o in getattr(task, f"{kind}_options")}
    for name, value in options.items():
        if name not in declared:
            takes = ", ".join(o.flag for o in declared.values()) or "none"
            raise OdezooError(
                f"{flag(name)} does not apply to {who}, a {task.name.replace('_', ' ')} model; "
                f"`odezoo {kind}` takes for it: {takes}."
            )
        declared[name].check(value)


def evaluate(model, *, metadata=None, **options):
    """Evaluates `model` as its task does; `options` are the task's `eval_options` (e.g. `dataset`,
    `split`, `limit`, `attack` for classifiers; `trajectories`, `seed` for PDE models).

    Returns:
        The task's JSON-ready result (`accuracy`, `loss`, ... or rollout and coefficient errors).
    """
    task = model.task
    check_options(task, options, "eval", model.name)
    return task.evaluate(model, metadata or {}, **options)
