"""Tasks: what a model does, and everything about it that is not its architecture.

Every model class names its task class (`TASK_CLASS = ImageClassification`, or the family's subclass
of a task, kept in the family's folder); the task owns the input checks
and their messages, what `predict` returns, the evaluation and its headline metric, the sample
inputs and agreement measure of export, the Hub `pipeline_tag` and card entries, fine-tuning with a
new head, and the checks the preset tests run. The CLI, `odezoo.load`, evaluation, export, the cards
and the preset tests call these hooks and never ask which task they hold.

Task modules import only NumPy (and `odezoo.data`, `odezoo.errors`) at module level, so the CLI can
read their options without starting TensorFlow. `TASKS` lists the task contracts (the CLI offers every
contract's options; a family's subclass adds behaviour, not options).
"""

import importlib

from odezoo.errors import OdezooError
from odezoo.tasks.base import Option as Option
from odezoo.tasks.base import Task as Task

# task name -> "module:class"
TASKS = {
    "image_classification": "odezoo.tasks.image_classification:ImageClassification",
    "pde_rollout": "odezoo.tasks.pde_rollout:PDERollout",
    "image_restoration": "odezoo.tasks.image_restoration:ImageRestoration",
    "translation": "odezoo.tasks.text:Translation",
    "masked_lm": "odezoo.tasks.text:MaskedLM",
    "text_classification": "odezoo.tasks.text:TextClassification",
}
_INSTANCES: dict[str, Task] = {}


def get_task(name) -> Task:
    """The task named `name` (one instance per task)."""
    if name not in TASKS:
        raise OdezooError(f"Unknown task {name!r}; odezoo has {sorted(TASKS)}.")
    if name not in _INSTANCES:
        module, cls = TASKS[name].split(":")
        _INSTANCES[name] = getattr(importlib.import_module(module), cls)()
    return _INSTANCES[name]


def all_tasks() -> list[Task]:
    return [get_task(name) for name in TASKS]
