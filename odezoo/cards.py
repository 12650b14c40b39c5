"""Model cards: a preset folder's README.md (Hub metadata with the task's `model-index` entries).
The README's preset table: `odezoo.zoo.preset_table`."""

import inspect


def model_card(cls, task, metadata) -> str:
    """The preset's README.md for a model of class `cls` doing `task` (`odezoo.tasks.Task`): Hub metadata
    (pipeline tag, `model-index` results) and a short card."""
    from huggingface_hub import EvalResult, ModelCardData

    name = metadata.get("preset", cls.__name__)
    metrics = metadata.get("metrics", [])
    results = [EvalResult(**entry) for entry in task.eval_results(metadata)]
    data = ModelCardData(
        library_name="keras",
        pipeline_tag=task.pipeline_tag,
        license=metadata.get("license", "apache-2.0"),
        tags=["odezoo", cls.__name__, task.name],
        model_name=name,
        eval_results=results or None,
    )
    doc = inspect.getdoc(cls) or ""
    equation = doc.split("\n\nArgs:")[0]
    rows = "\n".join(
        f"| {m['dataset']} | {m['split']} | {m['metric']} | {m['value']:.4f} | `{m.get('command', '')}` |"
        for m in metrics
    )
    sections = [
        f"# {name}\n\n{metadata.get('description', '')}",
        f"## Model\n\n{equation}",
        f"## Usage\n\n```python\nimport odezoo\nmodel = odezoo.load({name!r})\n```",
    ]
    if rows:
        sections.append(
            f"## Results\n\n| data | split | metric | value | command |\n|---|---|---|---|---|\n{rows}"
        )
    sections += [f"## {title}\n\n{text}" for title, text in metadata.get("card_sections", {}).items()]
    if metadata.get("train_command"):
        sections.append(f"## Training\n\n```\n{metadata['train_command']}\n```")
    if cls.CITATION:
        sections.append(f"## Citation\n\n```bibtex\n{cls.CITATION}\n```")
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"
