"""Converts the authors' fairseq checkpoints of Macaron Net (IWSLT14 De→En small, WMT14 En→De base and
big; models.md 2.4b) into preset folders that `odezoo.load` opens. Token ids stay fairseq's.

The checkpoint is read with `torch.load(weights_only=True)`: only tensors, containers,
`argparse.Namespace` and inert stand-ins for fairseq's meter classes are rebuilt, so a file that
needs any other object is refused before anything in it runs.
"""

import argparse
import pickle
import re
import tempfile
from pathlib import Path

import numpy as np

from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron import CONFIGS
from odezoo.models.macaron.macaron_tokenizer import Dictionary, MacaronTokenizer

# fairseq arch name (`--arch`) → the `CONFIGS` entry whose defaults its architecture function sets
ARCHITECTURES = {
    "transformer_iwslt_de_en_macaron_v2": "iwslt14_small",
    "transformer_wmt_en_de_macaron_v2": "wmt14_base",
    "transformer_wmt_en_de_big_t2t_macaron": "wmt14_big",
}
# `MacaronTransformer` argument ← the fairseq `args` field that sets it (`encoder_*` = `decoder_*`)
_FIELDS = {
    "num_layers": "layers",
    "hidden_dim": "embed_dim",
    "num_heads": "attention_heads",
    "intermediate_dim": "ffn_embed_dim",
    "normalize_before": "normalize_before",
}
# state-dict entries that hold no weights: format versions and the sinusoids' dtype marker
_BOOKKEEPING = re.compile(r"(encoder|decoder)\.(version|embed_positions\._float_tensor)")


class _Meter:
    """An inert stand-in for a fairseq training meter: unpickling sets its attributes, nothing runs."""


_METERS = [
    (type(name, (_Meter,), {"__doc__": _Meter.__doc__}), f"fairseq.meters.{name}")
    for name in ("AverageMeter", "TimeMeter", "StopwatchMeter")
]


def read_checkpoint(path):
    """The dict a fairseq checkpoint holds (`args`, `model`, ...), read with `torch.load(weights_only=True)`
    allowing `argparse.Namespace` and fairseq's meters (as `_Meter`s) besides tensors and containers."""
    try:
        import torch
    except ImportError:
        raise OdezooError(
            "Converting a fairseq checkpoint needs PyTorch (the `convert` extra): "
            "pip install 'odezoo[convert]'."
        ) from None
    path = Path(path)
    if not path.is_file():
        raise OdezooError(f"No checkpoint file at {path}: pass a fairseq checkpoint (.pt).")
    try:
        with torch.serialization.safe_globals([argparse.Namespace, *_METERS]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        if refused:
            raise OdezooError(
                f"{path} needs the Python object {refused.group(1)} to be read, which a fairseq checkpoint "
                "does not hold (only tensors, argparse.Namespace and fairseq meters): refused, nothing in "
                "it was run."
            ) from None
        raise _not_a_checkpoint(path, error) from None
    except (RuntimeError, EOFError, ValueError, KeyError) as error:
        raise _not_a_checkpoint(path, error) from None
    if not isinstance(checkpoint, dict) or not {"args", "model"} <= checkpoint.keys():
        if isinstance(checkpoint, dict):
            what = f"a dict with keys {sorted(map(str, checkpoint))}"
        else:
            what = f"a {type(checkpoint).__name__}"
        raise OdezooError(
            f"{path} holds {what:.200}, not a fairseq checkpoint (a dict with 'args' and 'model')."
        )
    weights = checkpoint["model"]
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise OdezooError(
            f"{path}'s 'model' is a {type(weights).__name__} that is not a state dict of tensors, as a "
            "fairseq checkpoint's is."
        )
    if not isinstance(checkpoint["args"], argparse.Namespace):
        raise OdezooError(
            f"{path}'s 'args' is a {type(checkpoint['args']).__name__}, not the argparse.Namespace of a "
            "fairseq checkpoint."
        )
    return checkpoint


def _not_a_checkpoint(path, error):
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return OdezooError(
        f"Cannot read {path} as a PyTorch checkpoint ({reason:.200}): pass a fairseq checkpoint (.pt)."
    )


def model_config(args):
    """`MacaronTransformer` keyword arguments (vocabulary aside) from a checkpoint's `args`: the
    arch's `CONFIGS` entry with every value the args set."""
    arch = getattr(args, "arch", None)
    if arch not in ARCHITECTURES:
        raise OdezooError(
            f"The checkpoint's arch is {arch!r}; the converter knows the Macaron architectures "
            f"{', '.join(ARCHITECTURES)}."
        )
    config = dict(CONFIGS[ARCHITECTURES[arch]])
    config["intermediate_dim"] //= 2  # the arch's width of each of the two FFNs, fairseq's ffn_embed_dim
    for name, field in _FIELDS.items():
        values = {getattr(args, f"{side}_{field}", config[name]) for side in ("encoder", "decoder")}
        if len(values) > 1:
            raise OdezooError(
                f"The checkpoint's encoder_{field} and decoder_{field} differ ({sorted(values)}); "
                "MacaronTransformer has one value for both."
            )
        config[name] = values.pop()
    config["intermediate_dim"] *= 2  # MacaronTransformer takes the baseline's d_ff
    config["dropout"] = getattr(args, "dropout", config["dropout"])
    config["attention_dropout"] = getattr(args, "attention_dropout", config["attention_dropout"])
    config["activation_dropout"] = getattr(args, "relu_dropout", config["activation_dropout"])
    config["max_positions"] = max(
        getattr(args, "max_source_positions", 1024), getattr(args, "max_target_positions", 1024)
    )
    config["share_all_embeddings"] = bool(getattr(args, "share_all_embeddings", False))
    return config


def _weights(model, state):
    """`(Keras variable, state-dict key, array)` for every weight of `model`, from fairseq's state
    dict `state` (NumPy arrays): Linear weights (out × in) transposed to kernels (in × out), the
    attention's `in_proj_weight` split into its q | k | v row blocks."""
    pairs = []

    def linear(dense, key):
        pairs.append((dense.kernel, f"{key}.weight", _entry(state, f"{key}.weight").T))
        pairs.append((dense.bias, f"{key}.bias", _entry(state, f"{key}.bias")))

    def norm(layer, key):
        pairs.append((layer.gamma, f"{key}.weight", _entry(state, f"{key}.weight")))
        pairs.append((layer.beta, f"{key}.bias", _entry(state, f"{key}.bias")))

    def attention(layer, key):
        weight, bias = _entry(state, f"{key}.in_proj_weight"), _entry(state, f"{key}.in_proj_bias")
        width = len(weight) // 3
        for i, dense in enumerate((layer.query_dense, layer.key_dense, layer.value_dense)):
            rows = slice(i * width, (i + 1) * width)
            pairs.append((dense.kernel, f"{key}.in_proj_weight", weight[rows].T))
            pairs.append((dense.bias, f"{key}.in_proj_bias", bias[rows]))
        linear(layer.output_dense, f"{key}.out_proj")

    def ffns(layer, key):
        linear(layer.macaron_ffn.inner_dense, f"{key}.macaron_fc1")
        linear(layer.macaron_ffn.output_dense, f"{key}.macaron_fc2")
        linear(layer.ffn.inner_dense, f"{key}.fc1")
        linear(layer.ffn.output_dense, f"{key}.fc2")

    for i, layer in enumerate(model.encoder_layers):
        key = f"encoder.layers.{i}"
        ffns(layer, key)
        attention(layer.self_attention, f"{key}.self_attn")
        norm(layer.self_attention_norm, f"{key}.layer_norms.0")
        norm(layer.ffn_norm, f"{key}.layer_norms.1")
        norm(layer.macaron_ffn_norm, f"{key}.layer_norms.2")
    for i, layer in enumerate(model.decoder_layers):
        key = f"decoder.layers.{i}"
        ffns(layer, key)
        attention(layer.self_attention, f"{key}.self_attn")
        attention(layer.cross_attention, f"{key}.encoder_attn")
        norm(layer.macaron_ffn_norm, f"{key}.macaron_layer_norm")
        norm(layer.self_attention_norm, f"{key}.self_attn_layer_norm")
        norm(layer.cross_attention_norm, f"{key}.encoder_attn_layer_norm")
        norm(layer.ffn_norm, f"{key}.final_layer_norm")
    for keras_norm, key in (
        (model.encoder_norm, "encoder.layer_norm"),
        (model.decoder_norm, "decoder.layer_norm"),
    ):
        if keras_norm is not None:
            norm(keras_norm, key)
    embedding = _entry(state, "encoder.embed_tokens.weight")
    if model.share_all_embeddings:
        if not np.array_equal(embedding, _entry(state, "decoder.embed_tokens.weight")):
            raise OdezooError(
                "The checkpoint's args say share_all_embeddings but its encoder and decoder embeddings "
                "differ."
            )
        pairs.append((model.token_embedding.embeddings, "encoder.embed_tokens.weight", embedding))
        pairs.append((None, "decoder.embed_tokens.weight", None))  # the same matrix
    else:
        pairs.append((model.encoder_embedding.embeddings, "encoder.embed_tokens.weight", embedding))
        pairs.append(
            (
                model.decoder_embedding.embeddings,
                "decoder.embed_tokens.weight",
                _entry(state, "decoder.embed_tokens.weight"),
            )
        )
        pairs.append(
            (model.output_projection.kernel, "decoder.embed_out", _entry(state, "decoder.embed_out").T)
        )
    return pairs


def _entry(state, key):
    if key not in state:
        raise OdezooError(
            f"The checkpoint's state dict has no {key!r}, which the architecture its args describe has: is "
            "it a Macaron Net translation checkpoint?"
        )
    return state[key]


def convert_fairseq(checkpoint, dictionary, out, *, bpe_codes=None):
    """Writes the preset folder `out` of a fairseq Macaron Net translation checkpoint.

    Args:
        checkpoint: the fairseq checkpoint (`checkpoint_*.pt`).
        dictionary: the joined `dict.txt` the model was trained with (its ids are the model's).
        out: the preset folder to write (`odezoo.load(out)` opens it).
        bpe_codes: the subword-nmt codes the training data was segmented with; required when the
            dictionary holds `@@` subwords.

    Returns:
        `{"preset_dir", "arch", "vocabulary_size", "parameter_count"}`.
    """
    from odezoo.models.macaron.macaron import MacaronTransformer
    from odezoo.pretrained import sha256_of

    for option, path in (("--dict", dictionary), ("--bpe-codes", bpe_codes)):
        if path is not None and not Path(path).is_file():
            raise OdezooError(f"{option} {path} is not a file.")
    state_file = read_checkpoint(checkpoint)
    args = state_file["args"]
    config = model_config(args)
    state = {key: value.float().numpy() for key, value in state_file["model"].items()}
    rows = len(_entry(state, "encoder.embed_tokens.weight"))
    vocabulary = Dictionary.load(dictionary)
    if len(vocabulary) != rows:
        raise OdezooError(
            f"--dict {dictionary} has {len(vocabulary)} symbols (fairseq's 4 specials included) but the "
            f"checkpoint's embedding has {rows} rows: pass the dict.txt the model was trained with."
        )
    subword = next((s for s in vocabulary.symbols if s.endswith("@@")), None)
    if subword and bpe_codes is None:
        raise OdezooError(
            f"--dict {dictionary} holds BPE subwords (e.g. {subword!r}) but no --bpe-codes was given: pass "
            "the subword-nmt codes the training data was segmented with."
        )
    codes = None if bpe_codes is None else Path(bpe_codes).read_text(encoding="utf-8")
    tokenizer = MacaronTokenizer(
        vocabulary,
        codes,
        lowercase=not any(s != s.lower() for s in vocabulary.symbols[len(Dictionary.SPECIALS) :]),
        source_lang=getattr(args, "source_lang", "de"),
        target_lang=getattr(args, "target_lang", "en"),
    )

    model = MacaronTransformer(vocabulary_size=rows, pad_id=Dictionary.PAD_ID, **config)
    pairs = _weights(model, state)
    unused = sorted(set(state) - {key for _, key, _ in pairs} - set(filter(_BOOKKEEPING.fullmatch, state)))
    if unused:
        raise OdezooError(
            f"The checkpoint holds weights a {args.arch} MacaronTransformer has no place for: "
            f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}."
        )
    for variable, key, array in pairs:
        if variable is None:
            continue
        if tuple(array.shape) != tuple(variable.shape):
            raise OdezooError(
                f"The checkpoint's {key} {tuple(state[key].shape)} does not fit the model its args describe "
                f"({variable.path} {tuple(variable.shape)}, taken from it as {tuple(array.shape)})."
            )
        variable.assign(array)

    out = Path(out)
    name = Path(checkpoint).name
    with tempfile.TemporaryDirectory() as assets_folder:
        folder = model.save_pretrained(
            out,
            metadata={
                "preset": out.name,
                "description": f"Macaron Net ({args.arch}) converted from the fairseq checkpoint {name}.",
                "converted_from": {
                    "checkpoint": name,
                    "sha256": sha256_of(checkpoint),
                    "arch": args.arch,
                    "source_lang": tokenizer.source_lang,
                    "target_lang": tokenizer.target_lang,
                },
            },
            assets=tokenizer.save(assets_folder),
        )
    return {
        "preset_dir": str(folder),
        "arch": args.arch,
        "vocabulary_size": rows,
        "parameter_count": int(model.count_params()),
    }
