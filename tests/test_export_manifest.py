"""The committed export/MANIFEST.json is what `odezoo manifest` writes: an entry for
every published preset in every format its task takes, none for a preset, weights or format that is
not (or no longer) published, and the task's measure in every quantised entry."""

import json
from pathlib import Path

from odezoo.export import manifest_plan
from odezoo.presets import get_preset, list_presets
from odezoo.zoo import preset_task

MANIFEST = json.loads((Path(__file__).parents[1] / "export" / "MANIFEST.json").read_text())


def test_every_entry_is_of_a_published_preset_its_weights_and_a_format_its_task_takes():
    for key, entry in MANIFEST.items():
        name, folder = key.split("/")[:2]
        assert entry["preset"] == name in list_presets(), key
        assert entry["weights_sha256"] == get_preset(name).sha256, f"{key}: stale weights"
        fmt, _, quantize = folder.partition("_")
        fmt = "saved_model" if folder == "saved_model" else fmt
        refused = preset_task(name).unexportable
        assert fmt not in refused and f"{fmt}+{quantize}" not in refused, key
        if quantize and folder != "saved_model":
            checks = entry["outputs"].values() if "outputs" in entry else [entry]
            assert all("measure" in c or "top1_agreement" in c for c in checks), key


def test_every_published_preset_has_every_export_its_task_takes_quantised_ones_included():
    folders = [(name, fmt + (f"_{quantize}" if quantize else "")) for name, fmt, quantize in manifest_plan()]
    missing = [
        f"{name}/{folder}"
        for name, folder in folders
        if not any(key == f"{name}/{folder}" or key.startswith(f"{name}/{folder}/") for key in MANIFEST)
    ]
    assert not missing, f"missing from export/MANIFEST.json (odezoo manifest): {missing}"


def test_the_plan_follows_the_tasks_refusals():
    plan = set(manifest_plan())
    assert ("pde_net2_heat", "tflite", "int8") not in plan and ("pde_net2_heat", "tflite", "float16") in plan
    assert not any(name.startswith("macaron_dictionary") and fmt == "onnx" for name, fmt, _ in plan)


def test_the_manifest_command_names_an_unknown_preset_in_one_line(tmp_path, capsys):
    from odezoo import cli

    assert cli.main(["manifest", "lm_resnet99_nowhere", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("odezoo manifest: error: Unknown preset 'lm_resnet99_nowhere'")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
