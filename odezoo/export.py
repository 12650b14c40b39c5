"""Export to SavedModel, TFLite (LiteRT) and ONNX, each checked in its own runtime.

TensorFlow-specific. Every artifact is run by the runtime that deploys it
(`tf.saved_model.load`, `ai_edge_litert`, `onnxruntime`) on the task's sample inputs, and its
outputs are checked against the Keras model's by the task's agreement measure (output by output, for
a model with several inputs and outputs). A task may export a model as several named parts
(`Task.export_parts`: a translation model's encoder, decoder step and greedy loop), each its own
artifact under `<format>/<part>/`. TFLite is converted
with builtin ops only, so an op without a builtin kernel fails the conversion instead
of silently becoming a Flex (SELECT_TF_OPS) op that `ai_edge_litert` cannot run;
`allow_flex=True` opts in to Flex ops, and such a file is reported unchecked.
"""

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from odezoo._files import check_folder, inside, write_json_atomic
from odezoo._native_output import captured_native_output
from odezoo.errors import OdezooError
from odezoo.preset_folder import asset_files
from odezoo.tasks import Task

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("dynamic", "float16", "int8")


def export_model(
    model, path, fmt, *, quantize=None, allow_flex=False, sample=None, reference=None, progress=None,
    task=None, part="model",
):  # fmt: skip
    """Writes `model` in format `fmt` under the folder `path`, then checks it.

    The check is the agreement measure of the model's task (`Task.agreement`: max |difference|
    and top-1 agreement for classifiers, relative field error for PDE models); a plain Keras
    model gets the max |difference| <= 1e-4 of `Task`. A quantised export is checked by
    `task.quantized_agreement` instead: the task's own measure (top-1 or token agreement, PSNR loss,
    relative field error) with its tolerance for that quantisation.

    Args:
        model: a built Keras model.
        path: output folder (created).
        fmt: `"saved_model"`, `"tflite"` or `"onnx"`.
        quantize: TFLite only: `"dynamic"`, `"float16"` or `"int8"` (int8 calibrates
            on `sample`; inputs and outputs stay float32).
        allow_flex: TFLite only: allow Flex (TensorFlow) ops.
        sample: inputs for the check: an array, or a dict by input name for a model with several
            (default: 32 uniform random float32 inputs).
        reference: a model whose outputs the artifact must reproduce instead of `model`'s (the
            float64 original of a float32 export).
        progress: a `tqdm` bar that the stages "convert" and "check" advance by one each (default:
            a bar of their own, shown on stderr when it is a terminal).
        task: the task whose measure checks a quantised export (default: the model's own task), where
            `model` is a part of a preset's model (`Task.export_parts`) that has no task of its own.
        part: the name of that part, passed to `task.quantized_agreement`.

    Returns:
        `{"format", "path", "bytes"}` and the task's agreement fields (`max_abs_diff`, `tolerance`, ...);
        for a model with several outputs, `"outputs"`: those fields by output (`output_0`, ...).
    """
    if fmt not in FORMATS:
        raise OdezooError(f"Unknown export format {fmt!r}; choose one of {FORMATS}.")
    if quantize is not None and (fmt != "tflite" or quantize not in QUANTIZATIONS):
        raise OdezooError(
            f"Quantisation {quantize!r} is not offered for {fmt}; TFLite takes one of {QUANTIZATIONS}."
        )
    _require_runtime(fmt)
    own = getattr(model, "task", None) or Task()
    if sample is None:
        sample = own.sample_inputs(model, {})
    path = Path(path)
    expected = _arrays((reference or model)(sample, training=False))
    artifact, flex, actual = _convert_and_run(model, path, fmt, quantize, allow_flex, sample, progress)
    if flex:  # only with allow_flex; ai_edge_litert has no Flex delegate to run them
        return {
            "format": "tflite+flex",
            "path": os.fspath(artifact),
            "flex_ops": flex,
            "max_abs_diff": None,
            "note": "not checked: ai_edge_litert cannot run Flex ops; "
            "check it in a runtime with the Flex delegate",
        }
    fields, problem = _agreement(_measure(own, task, fmt, quantize, part), expected, _arrays(actual))
    report = {
        "format": fmt + (f"+{quantize}" if quantize else ""),
        "path": os.fspath(artifact),
        **fields,
        "bytes": sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
        if artifact.is_dir()
        else artifact.stat().st_size,
    }
    if problem:
        raise OdezooError(
            f"The {report['format']} export at {artifact} {problem}; it was kept for inspection but must "
            "not be deployed."
        )
    return report


def _convert_and_run(model, path, fmt, quantize, allow_flex, sample, progress):
    """Writes the artifact under `path` and runs it on `sample` in its runtime: `(artifact, Flex ops,
    outputs)` (no outputs where Flex ops are kept: they cannot run here). A failure removes the
    folders this call created."""
    created = [p for p in (path, *path.parents) if not p.exists()]
    bar = progress if progress is not None else _stage_bar(f"export to {fmt}", 2)
    try:
        path.mkdir(parents=True, exist_ok=True)
        bar.set_postfix_str("convert")
        with captured_native_output():
            artifact, flex = _write(model, path, fmt, quantize, allow_flex, sample)
        bar.update()
        bar.set_postfix_str("check")
        with captured_native_output():
            actual = None if flex else _run(artifact, fmt, sample)
        bar.update()
    except BaseException as error:
        for folder in created:  # nothing half-written stays behind: the folders this call made go
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, OSError):
            raise OdezooError(
                f"Cannot write the {fmt} export to {path}: {error.strerror or error}"
                f"{f' ({error.filename})' if error.filename else ''}. Free some space or choose a "
                "writable --output-dir."
            ) from None
        raise
    finally:
        if progress is None:
            bar.close()
    return artifact, flex, actual


def _arrays(outputs):
    """A model's or an artifact's outputs as a list of NumPy arrays, in order."""
    import keras

    return [np.asarray(x) for x in keras.tree.flatten(outputs)]


def _measure(own, task, fmt, quantize, part):
    """The check of output `i`, `check(i, expected, actual) -> (fields, problem)`: the model's own task's
    `agreement` for a float export, the (preset's) task's `quantized_agreement` for a quantised one."""
    if quantize:
        task = task or own
        return lambda i, e, a: task.quantized_agreement(e, a, quantize, part=part, output=i)
    return lambda i, e, a: own.agreement(e, a, fmt)


def _agreement(check, expected, actual):
    """`check` of each output: `(fields, problem or None)`; several outputs are reported by name."""
    if len(expected) == 1:
        return check(0, expected[0], actual[0])
    checks = {f"output_{i}": check(i, e, a) for i, (e, a) in enumerate(zip(expected, actual))}
    problems = [f"{name} {problem}" for name, (_, problem) in checks.items() if problem]
    return {"outputs": {name: fields for name, (fields, _) in checks.items()}}, "; ".join(problems) or None


# The runtimes each format is checked in, and the packages that provide them (the `export` extra).
RUNTIMES = {"tflite": ("ai_edge_litert",), "onnx": ("tf2onnx", "onnxruntime")}


def _require_runtime(fmt):
    """Raises, before anything is written, when the packages that write and check `fmt` are missing."""
    import importlib

    missing = []
    for name in RUNTIMES.get(fmt, ()):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise OdezooError(
            f"Exporting to {fmt} needs {', '.join(missing)} (the `export` extra): "
            "pip install 'odezoo[export]'."
        )


def _stage_bar(desc, stages):
    """A bar over `stages` steps of a slow command, on stderr when it is a terminal (stdout stays clean)."""
    from tqdm.auto import tqdm

    return tqdm(total=stages, desc=desc, unit="stage", disable=None)


def _write(model, path, fmt, quantize, allow_flex, sample):
    """Writes the artifact; returns `(artifact path, Flex ops)`."""
    if fmt == "saved_model":
        model.export(os.fspath(path), format="tf_saved_model", verbose=False)
        return path, []
    if fmt == "onnx":
        artifact = path / "model.onnx"
        model.export(os.fspath(artifact), format="onnx", verbose=False)
        return artifact, []
    artifact = path / "model.tflite"
    _convert_tflite(model, artifact, quantize, allow_flex, sample)
    return artifact, flex_ops(artifact)


def _run(artifact, fmt, sample):
    """The artifact's outputs on `sample`, computed by its own runtime."""
    return {"saved_model": _run_saved_model, "onnx": _run_onnx, "tflite": _run_tflite}[fmt](artifact, sample)


def export_preset(preset, fmt, *, output_dir="export", quantize=None, allow_flex=False, revision=None):
    """Exports a preset to `output_dir/<preset>/<format>[_<quantize>]/`, checks it as its task says
    (`Task.export_parts`, `Task.agreement`) and records the result in `output_dir/MANIFEST.json`.

    A task that exports several parts gets one folder per part, `.../<format>/<part>/`, one manifest
    entry per part (`<preset>/<format>/<part>`), and the report `{"preset", "weights_sha256", "parts":
    {part: report}}`.

    The preset's assets (the files its `metadata.json` lists besides config, weights, metadata and card:
    a translation model's tokenizer, `dict.txt`, `bpe.codes` and `tokenizer.json`) are copied into the
    format's folder, beside the artifacts that need them, and recorded as `"assets": {name: path}` in the
    report and its manifest entries (a preset without assets records none).
    """
    from odezoo.zoo import load_resolved, resolve

    check_folder(output_dir, "--output-dir")
    manifest_path = Path(output_dir) / "MANIFEST.json"
    _read_manifest(manifest_path)  # a file odezoo could not update is refused before the export
    with _stage_bar(f"export {preset} to {fmt}", 3) as bar:
        bar.set_postfix_str("load")
        resolved = resolve(preset, revision=revision)
        model, metadata = load_resolved(resolved), resolved.metadata
        name = resolved.name
        _refuse_unexportable(name, model.task, fmt, quantize)
        fix = f"it is the `preset` entry of {resolved.folder}'s metadata.json: make it a plain name"
        target = inside(output_dir, name, "Preset name", fix=fix) / (
            fmt + (f"_{quantize}" if quantize else "")
        )
        parts = model.task.export_parts(model, metadata, quantize)
        bar.total = 1 + 2 * len(parts)  # load, then convert and check each part
        bar.update()
        reports = {
            part: export_model(
                exported,
                target if len(parts) == 1 else inside(target, part, "Export part"),
                fmt,
                quantize=quantize,
                allow_flex=allow_flex,
                sample=sample,
                reference=reference,
                progress=bar,
                task=model.task,
                part=part,
            )
            for part, (exported, reference, sample) in parts.items()
        }
    assets = _copy_assets(resolved.folder, metadata, target)
    header = {"preset": name, "weights_sha256": metadata.get("weights_sha256")}
    header.update({"assets": assets} if assets else {})
    manifest = _read_manifest(manifest_path)  # read again: another export may have added to it meanwhile
    if len(parts) == 1:
        (report,) = reports.values()
        manifest[f"{name}/{target.name}"] = {**header, **report}
        write_json_atomic(manifest_path, manifest)
        return {**header, **report}
    for part, report in reports.items():
        manifest[f"{name}/{target.name}/{part}"] = {**header, "part": part, **report}
    write_json_atomic(manifest_path, manifest)
    return {**header, "parts": reports}


def _refuse_unexportable(name, task, fmt, quantize):
    """Raises, before anything is converted, where `task.unexportable` names `fmt` or `fmt+quantize`."""
    refused = task.unexportable
    if fmt in refused:
        raise OdezooError(
            f"{name} cannot be exported to {fmt}: {refused[fmt]}. Formats that work: "
            f"{', '.join(f for f in FORMATS if f not in refused)}."
        )
    key = f"{fmt}+{quantize}"
    if quantize and key in refused:
        working = [q for q in QUANTIZATIONS if f"{fmt}+{q}" not in refused]
        raise OdezooError(
            f"{name} cannot be exported to {key}: {refused[key]}. Quantisations that work: "
            f"{', '.join(working) or 'none'} (or none: --format {fmt} alone)."
        )


def _copy_assets(folder, metadata, target):
    """Copies the assets of the preset folder `folder` (`asset_files`, verified) into the export folder
    `target`; returns `{name: path of the copy}`."""
    copied = {}
    for name, source in asset_files(folder, metadata).items():
        copy = inside(target, name, "Asset name")
        try:
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
        except OSError as error:
            raise OdezooError(
                f"Cannot copy the preset's {name} beside the export in {target}: {error.strerror or error}. "
                "Free some space or choose a writable --output-dir."
            ) from None
        copied[name] = os.fspath(copy)
    return copied


def _read_manifest(path):
    """The exports recorded in `path` (`{}` if there is none); raises where it is no manifest odezoo can
    update (then it is left as it is)."""
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
        problem = None if isinstance(manifest, dict) else f"it holds a JSON {type(manifest).__name__}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        problem = str(error)
    if problem:
        raise OdezooError(
            f"{path} is not an export manifest ({problem}); odezoo leaves it alone. Move it away or choose "
            "another --output-dir."
        )
    return manifest


def _run_saved_model(path, sample):
    import tensorflow as tf

    loaded = tf.saved_model.load(os.fspath(path))
    return loaded.serve(sample)


def _run_onnx(path, sample):
    import onnxruntime

    session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    feeds = sample if isinstance(sample, dict) else {session.get_inputs()[0].name: sample}
    outputs = session.run(None, feeds)
    return outputs[0] if len(outputs) == 1 else outputs


def _convert_tflite(model, path, quantize, allow_flex, sample):
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if allow_flex:
            ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        converter.target_spec.supported_ops = ops
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            converter.representative_dataset = _calibration_rows(sample)
        try:
            content = converter.convert()
        except Exception as error:  # the converter raises ConverterError and others
            raise OdezooError(_conversion_problem(str(error))) from None
    path.write_bytes(content)


def _calibration_rows(sample):
    """int8 calibration data: a generator function over `sample` one row at a time, as the converter
    takes it (an input list, or a dict by input name for a model with named inputs). An input without
    the batch axis (as long as the batch, e.g. a decoding step's `index`) goes whole into every row."""
    if isinstance(sample, dict):
        rows = max(len(v) for v in sample.values())
        return lambda: (
            {k: v[i : i + 1] if len(v) == rows else v for k, v in sample.items()} for i in range(rows)
        )
    inputs = list(sample) if isinstance(sample, (list, tuple)) else [sample]
    return lambda: ([v[i : i + 1] for v in inputs] for i in range(len(inputs[0])))


def _conversion_problem(text):
    select = re.search(r"TF Select ops: (.+)", text)
    custom = re.search(r"Custom ops: (.+)", text)
    if custom:
        return (
            f"TFLite cannot convert the op(s) {custom.group(1).strip()}: they have neither a builtin "
            "nor a Flex kernel, so this model has no TFLite export; use SavedModel or ONNX."
        )
    if select:
        return (
            f"TFLite has no builtin kernel for {select.group(1).strip()}; pass --allow-flex "
            "(allow_flex=True) to use TensorFlow (Flex) ops, which then need a runtime with the "
            "Flex delegate."
        )
    return f"TFLite conversion failed: {text.strip().splitlines()[0][:300]}"


def flex_ops(path):
    """Names of the Flex (SELECT_TF_OPS) custom ops in a .tflite file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(os.fspath(path))
    codes = (code.customCode for code in model.operatorCodes)
    names = {c.decode() if isinstance(c, bytes) else c for c in codes if c}
    return sorted(name for name in names if name.startswith("Flex"))


def _run_tflite(path, sample):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.fspath(path))
    runner = interpreter.get_signature_runner("serving_default")
    if not isinstance(sample, dict):
        (name,) = runner.get_input_details()
        sample = {name: sample}
    outputs = runner(**sample)  # `output_0`, `output_1`, ...
    return [outputs[name] for name in sorted(outputs, key=lambda name: int(name.rpartition("_")[2]))]


def manifest_plan(presets=None):
    """`(preset, format, quantisation or None)` of every export the manifest records: each published preset
    (or those named) in each format its task takes, TFLite also in each quantisation it takes."""
    from odezoo.presets import list_presets
    from odezoo.zoo import preset_task

    plan = []
    for name in presets or list_presets():
        refused = preset_task(name).unexportable
        plan += [(name, fmt, None) for fmt in FORMATS if fmt not in refused]
        if "tflite" not in refused:
            plan += [(name, "tflite", q) for q in QUANTIZATIONS if f"tflite+{q}" not in refused]
    return plan


def write_manifest(output_dir="export", presets=None):
    """Runs every export of `manifest_plan` into `output_dir` (recording each in its MANIFEST.json);
    returns the one-line problems of those that failed (the others are recorded all the same)."""
    problems = []
    for name, fmt, quantize in manifest_plan(presets):
        try:
            export_preset(name, fmt, output_dir=output_dir, quantize=quantize)
        except OdezooError as error:
            problems.append(f"{name} {fmt}{f'+{quantize}' if quantize else ''}: {error}")
    return problems
