"""Model cards: a preset folder's README.md (Hub metadata with the task's `model-index` entries) and
the README's preset table."""

import inspect


def model_card(cls, metadata) -> str:
    """The preset's README.md: Hub metadata (pipeline tag, `model-index` results) and a short card."""
    from huggingface_hub import EvalResult, ModelCardData

    from odezoo.tasks import get_task

    task = get_task(metadata.get("task") or cls.TASK)  # the instance's task (MacaronBert: by its head)
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


def preset_table(names=None) -> str:
    """The README's Markdown table of presets, with the headline result of bundled copies."""
    from odezoo.presets import bundled_folder, get_preset, list_presets
    from odezoo.pretrained import read_metadata
    from odezoo.tasks import get_task

    rows = [
        "| preset | model | task | data | result (ours) | parameters | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names or list_presets():
        preset = get_preset(name)
        folder = bundled_folder(name)
        meta = read_metadata(folder) if folder else {}
        params = f"{meta['parameter_count']:,}" if "parameter_count" in meta else "—"
        cells = [
            f"`{name}`",
            preset.model,
            preset.task.replace("_", " "),
            preset.dataset,
            get_task(preset.task).headline(meta),
            params,
            preset.description,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
