"""Converts the authors' fairseq checkpoints of Macaron Net (IWSLT14 De→En small, WMT14 En→De base and
big; docs/papers.md#macaron-checkpoints) and of their BERT fork (BERT-base Macaron, pre-trained or
fine-tuned as a classifier) into preset folders that `odezoo.load` opens. Token ids stay fairseq's.

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
from odezoo.models.macaron.macaron_bert import CONFIGS as BERT_CONFIGS
from odezoo.models.macaron.macaron_bert_inputs import BERT_SYMBOLS, SEGMENT_PAD_ROW
from odezoo.models.macaron.macaron_tokenizer import DASH_TOKEN, OLD_DASH_TOKEN, Dictionary, MacaronTokenizer

# fairseq arch name (`--arch`) → the `CONFIGS` entry whose defaults its architecture function sets
ARCHITECTURES = {
    "transformer_iwslt_de_en_macaron_v2": "iwslt14_small",
    "transformer_wmt_en_de_macaron_v2": "wmt14_base",
    "transformer_wmt_en_de_big_t2t_macaron": "wmt14_big",
}
# the BERT fork's arch names (`--arch`) → (the model's head, whether its layers are Macaron's by default)
BERT_ARCHITECTURES = {
    "transformer_bert_base_macaron": ("masked_lm", True),
    "transformer_bert_base": ("masked_lm", False),
    "transformer_classifier_base_macaron": ("classifier", True),
    "transformer_classifier_base": ("classifier", False),
}
# the fork's settings that `MacaronBert` implements (the values the BERT-base archs set)
_BERT_SETTINGS = {
    "encoder_normalize_before": True,
    "no_normalize_affine": True,
    "act_fn": "gelu",
    "encoder_learned_pos": False,
    "no_token_positional_embeddings": False,
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
            f"{', '.join([*ARCHITECTURES, *BERT_ARCHITECTURES])}."
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


class _Pairs(list):
    """`(Keras variable, state-dict key, array)` triples taken from fairseq's state dict `state` (NumPy
    arrays): Linear weights (out × in) transposed to kernels (in × out), the attention's
    `in_proj_weight` split into its q | k | v row blocks."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def linear(self, dense, key):
        self.append((dense.kernel, f"{key}.weight", _entry(self.state, f"{key}.weight").T))
        self.append((dense.bias, f"{key}.bias", _entry(self.state, f"{key}.bias")))

    def norm(self, layer, key):
        self.append((layer.gamma, f"{key}.weight", _entry(self.state, f"{key}.weight")))
        self.append((layer.beta, f"{key}.bias", _entry(self.state, f"{key}.bias")))

    def attention(self, layer, key):
        weight = _entry(self.state, f"{key}.in_proj_weight")
        bias = _entry(self.state, f"{key}.in_proj_bias")
        width = len(weight) // 3
        for i, dense in enumerate((layer.query_dense, layer.key_dense, layer.value_dense)):
            rows = slice(i * width, (i + 1) * width)
            self.append((dense.kernel, f"{key}.in_proj_weight", weight[rows].T))
            self.append((dense.bias, f"{key}.in_proj_bias", bias[rows]))
        self.linear(layer.output_dense, f"{key}.out_proj")

    def ffns(self, layer, key):
        if layer.scheme == "strang":
            self.linear(layer.macaron_ffn.inner_dense, f"{key}.macaron_fc1")
            self.linear(layer.macaron_ffn.output_dense, f"{key}.macaron_fc2")
        self.linear(layer.ffn.inner_dense, f"{key}.fc1")
        self.linear(layer.ffn.output_dense, f"{key}.fc2")

    def tied(self, key, embedding_key):
        """`key` holds the same matrix as `embedding_key` (a shared embedding): it is checked, not loaded."""
        if not np.array_equal(_entry(self.state, key), _entry(self.state, embedding_key)):
            raise OdezooError(
                f"The checkpoint's args say its embeddings are shared but its {key} and {embedding_key} "
                "differ."
            )
        self.append((None, key, None))

    def assign(self, left_out, description):
        """Loads every pair into its variable, after refusing a state dict with weights no pair takes
        (but the keys `left_out` on purpose) or an array whose shape does not fit."""
        known = {key for _, key, _ in self} | set(left_out)
        unused = sorted(set(self.state) - known - set(filter(_BOOKKEEPING.fullmatch, self.state)))
        if unused:
            raise OdezooError(
                f"The checkpoint holds weights {description} has no place for: "
                f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}."
            )
        for variable, key, array in self:
            if variable is None:
                continue
            if tuple(array.shape) != tuple(variable.shape):
                raise OdezooError(
                    f"The checkpoint's {key} {tuple(self.state[key].shape)} does not fit the model its args "
                    f"describe ({variable.path} {tuple(variable.shape)}, taken from it as "
                    f"{tuple(array.shape)})."
                )
            variable.assign(array)


def _weights(model, state):
    """The `_Pairs` of a `MacaronTransformer` from fairseq's state dict `state`."""
    pairs = _Pairs(state)
    for i, layer in enumerate(model.encoder_layers):
        key = f"encoder.layers.{i}"
        pairs.ffns(layer, key)
        pairs.attention(layer.self_attention, f"{key}.self_attn")
        pairs.norm(layer.self_attention_norm, f"{key}.layer_norms.0")
        pairs.norm(layer.ffn_norm, f"{key}.layer_norms.1")
        pairs.norm(layer.macaron_ffn_norm, f"{key}.layer_norms.2")
    for i, layer in enumerate(model.decoder_layers):
        key = f"decoder.layers.{i}"
        pairs.ffns(layer, key)
        pairs.attention(layer.self_attention, f"{key}.self_attn")
        pairs.attention(layer.cross_attention, f"{key}.encoder_attn")
        pairs.norm(layer.macaron_ffn_norm, f"{key}.macaron_layer_norm")
        pairs.norm(layer.self_attention_norm, f"{key}.self_attn_layer_norm")
        pairs.norm(layer.cross_attention_norm, f"{key}.encoder_attn_layer_norm")
        pairs.norm(layer.ffn_norm, f"{key}.final_layer_norm")
    for keras_norm, key in (
        (model.encoder_norm, "encoder.layer_norm"),
        (model.decoder_norm, "decoder.layer_norm"),
    ):
        if keras_norm is not None:
            pairs.norm(keras_norm, key)
    embedding = _entry(state, "encoder.embed_tokens.weight")
    if model.share_all_embeddings:
        pairs.append((model.token_embedding.embeddings, "encoder.embed_tokens.weight", embedding))
        pairs.tied("decoder.embed_tokens.weight", "encoder.embed_tokens.weight")
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
            "it a Macaron Net checkpoint (translation, or the BERT fork's)?"
        )
    return state[key]


def bert_config(args):
    """`MacaronBert` keyword arguments (vocabulary aside) from the `args` of a BERT fork checkpoint (an
    arch of `BERT_ARCHITECTURES`): BERT-base's values where the args leave a field out, as the arch
    functions set them; args outside what `MacaronBert` implements (`_BERT_SETTINGS`) are refused."""
    head, macaron = BERT_ARCHITECTURES[args.arch]
    settings = {**_BERT_SETTINGS, **({"share_all_embeddings": True} if head == "masked_lm" else {})}
    for field, value in settings.items():
        if getattr(args, field, value) != value:
            raise OdezooError(
                f"The checkpoint's args set {field}={getattr(args, field)!r}; MacaronBert is the fork's "
                f"{args.arch} with {', '.join(f'{k}={v!r}' for k, v in settings.items())}."
            )
    macaron = bool(getattr(args, "macaron", macaron))
    base = BERT_CONFIGS["bert_base"]
    width = getattr(args, "encoder_ffn_embed_dim", base["intermediate_dim"] // (2 if macaron else 1))
    config = {
        "num_layers": getattr(args, "encoder_layers", base["num_layers"]),
        "hidden_dim": getattr(args, "encoder_embed_dim", base["hidden_dim"]),
        "num_heads": getattr(args, "encoder_attention_heads", base["num_heads"]),
        "intermediate_dim": width * (2 if macaron else 1),  # MacaronBert takes BERT's d_ff
        "scheme": "strang" if macaron else "lie_trotter",
        "dropout": getattr(args, "dropout", base["dropout"]),
        "attention_dropout": getattr(args, "attention_dropout", base["attention_dropout"]),
        "activation_dropout": getattr(args, "relu_dropout", base["activation_dropout"]),
        "max_positions": getattr(args, "max_positions", 384 if head == "masked_lm" else 256),  # the tasks'
    }
    if head == "classifier":
        config["num_classes"] = getattr(args, "n_classes", 1)
    return config


# why the pre-training checkpoint's `classifier` (E → 1) is not converted
_NEXT_SENTENCE = "the next-sentence classifier of pre-training, which MacaronBert does not have"


def _bert_weights(model, state):
    """The `_Pairs` of a `MacaronBert` from the BERT fork's state dict `state` (its LayerNorms have no
    weights but the masked-LM head's), and `{key: why}` of the checkpoint's weights it leaves out."""
    pairs = _Pairs(state)
    embedding = _entry(state, "encoder.embed_tokens.weight")
    pairs.append((model.token_embedding.embeddings, "encoder.embed_tokens.weight", embedding))
    segments = _entry(state, "encoder.embed_segment.weight")
    if len(segments) > SEGMENT_PAD_ROW and segments[SEGMENT_PAD_ROW].any():
        raise OdezooError(
            f"The checkpoint's encoder.embed_segment.weight row {SEGMENT_PAD_ROW} (fairseq's padding row, "
            "added to every first-sentence token) is not zero, as the fork keeps it and MacaronBert assumes."
        )
    pairs.append((model.segment_embedding.embeddings, "encoder.embed_segment.weight", segments))
    for i, layer in enumerate(model.encoder_layers):
        pairs.ffns(layer, f"encoder.layers.{i}")
        pairs.attention(layer.self_attention, f"encoder.layers.{i}.self_attn")
    if model.num_classes is not None:
        pairs.linear(model.head, "classifier")
        return pairs, {}
    pairs.linear(model.mlm_dense, "mid_layer.0")
    pairs.norm(model.mlm_norm, "mid_layer.2")
    if "embed_out" in state:  # the fork registers the shared embedding again as the LM head's output
        pairs.tied("embed_out", "encoder.embed_tokens.weight")
    return pairs, {key: _NEXT_SENTENCE for key in ("classifier.weight", "classifier.bias") if key in state}


def bert_dictionary(vocabulary):
    """The fork's `BertDictionary` of a `dict.txt`: `<mask>` and `<cls>` after fairseq's four specials
    (kept where the file already starts with them, as odezoo writes it)."""
    added = list(BERT_SYMBOLS.values())
    symbols = vocabulary.symbols[len(Dictionary.SPECIALS) :]
    if symbols[: len(added)] == added:
        return vocabulary
    return Dictionary([*added, *symbols], [0] * len(added) + vocabulary.counts)


def convert_fairseq(checkpoint, dictionary, out, *, bpe_codes=None, aggressive_dash_splits=None):
    """Writes the preset folder `out` of a fairseq Macaron Net checkpoint: a translation model
    (`MacaronTransformer`) or, for the BERT fork's archs (`BERT_ARCHITECTURES`), a `MacaronBert` with
    the masked-LM head (pre-training) or a classifier of `n_classes` outputs (GLUE fine-tuning).

    Args:
        checkpoint: the fairseq checkpoint (`checkpoint_*.pt`).
        dictionary: the `dict.txt` the model was trained with (its ids are the model's; for BERT, the
            fork's `<mask>` and `<cls>` follow fairseq's four specials, as its `BertDictionary` adds them).
        out: the preset folder to write (`odezoo.load(out)` opens it).
        bpe_codes: the BPE codes the training data was segmented with, subword-nmt's or fastBPE's (the
            BERT fork's `bpe-code`); required when the dictionary holds `@@` subwords.
        aggressive_dash_splits: whether the data was Moses-tokenised with `-a` (`prepare-wmt14en2de.sh`),
            saved with the tokenizer; `None`: read from the dictionary, which then holds the token `-a`
            splits a hyphen into (`@-@`, or the older `##AT##-##AT##`) and otherwise never does.

    Returns:
        `{"preset_dir", "arch", "vocabulary_size", "parameter_count", "left_out"}`, the last `{key: why}`
        of the checkpoint's weights the model has no use for (the BERT pre-training's next-sentence head).
    """
    for option, path in (("--dict", dictionary), ("--bpe-codes", bpe_codes)):
        if path is not None and not Path(path).is_file():
            raise OdezooError(f"{option} {path} is not a file.")
    state_file = read_checkpoint(checkpoint)
    args = state_file["args"]
    bert = getattr(args, "arch", None) in BERT_ARCHITECTURES
    config = bert_config(args) if bert else model_config(args)
    state = {key: value.float().numpy() for key, value in state_file["model"].items()}
    rows = len(_entry(state, "encoder.embed_tokens.weight"))
    tokenizer = _tokenizer(dictionary, bpe_codes, rows, args, bert)
    if aggressive_dash_splits is not None:
        tokenizer.aggressive_dash_splits = bool(aggressive_dash_splits)
    model, left_out = _converted_model(args, config, rows, state, bert)
    folder = _save_preset(model, tokenizer, out, checkpoint, args, left_out, bert)
    return {
        "preset_dir": str(folder),
        "arch": args.arch,
        "vocabulary_size": rows,
        "parameter_count": int(model.count_params()),
        "left_out": left_out,
    }


def _tokenizer(dictionary, bpe_codes, rows, args, bert):
    """The `MacaronTokenizer` of the `dict.txt` `dictionary` (the fork's `BertDictionary` for BERT) and
    the BPE codes file `bpe_codes`, after refusing a dictionary whose size is not the embedding's `rows`
    or one with subwords but no codes. Moses' `-a` (WMT14's aggressive hyphen splitting) is on where the
    dictionary holds its hyphen token, which only `-a` produces."""
    vocabulary = Dictionary.load(dictionary)
    specials = len(Dictionary.SPECIALS)
    if bert:
        vocabulary, specials = bert_dictionary(vocabulary), specials + len(BERT_SYMBOLS)
    if len(vocabulary) != rows:
        raise OdezooError(
            f"--dict {dictionary} has {len(vocabulary)} symbols (fairseq's {specials} specials included) but "
            f"the checkpoint's embedding has {rows} rows: pass the dict.txt the model was trained with."
        )
    subword = next((s for s in vocabulary.symbols if s.endswith("@@")), None)
    if subword and bpe_codes is None:
        raise OdezooError(
            f"--dict {dictionary} holds BPE subwords (e.g. {subword!r}) but no --bpe-codes was given: pass "
            "the BPE codes (subword-nmt's or fastBPE's) the training data was segmented with."
        )
    codes = None if bpe_codes is None else Path(bpe_codes).read_text(encoding="utf-8")
    return MacaronTokenizer(
        vocabulary,
        codes,
        lowercase=not any(s != s.lower() for s in vocabulary.symbols[specials:]),
        escape=not bert,  # the fork's `tokenizer.perl -no-escape`
        aggressive_dash_splits=not bert and bool({DASH_TOKEN, OLD_DASH_TOKEN} & vocabulary.indices.keys()),
        source_lang="en" if bert else getattr(args, "source_lang", "de"),
        target_lang="en" if bert else getattr(args, "target_lang", "en"),
    )


def _converted_model(args, config, rows, state, bert):
    """The `MacaronBert` (`bert`) or `MacaronTransformer` of `config` with fairseq's state dict `state`
    loaded, and `{key: why}` of the checkpoint's weights it leaves out."""
    from odezoo.models.macaron.macaron import MacaronTransformer
    from odezoo.models.macaron.macaron_bert import MacaronBert

    if bert:
        model = MacaronBert(vocabulary_size=rows, pad_id=Dictionary.PAD_ID, **config)
        pairs, left_out = _bert_weights(model, state)
    else:
        model = MacaronTransformer(vocabulary_size=rows, pad_id=Dictionary.PAD_ID, **config)
        pairs, left_out = _weights(model, state), {}
    pairs.assign(left_out, f"a {args.arch} {type(model).__name__}")
    return model, left_out


def _save_preset(model, tokenizer, out, checkpoint, args, left_out, bert):
    """Saves `model` and `tokenizer`'s assets as the preset folder `out`, its metadata naming the
    checkpoint it was converted from; returns the folder."""
    from odezoo.preset_folder import sha256_of

    out = Path(out)
    name = Path(checkpoint).name
    converted = {"checkpoint": name, "sha256": sha256_of(checkpoint), "arch": args.arch}
    if bert:
        converted["left_out"] = left_out
    else:
        converted |= {"source_lang": tokenizer.source_lang, "target_lang": tokenizer.target_lang}
    family = "Macaron-BERT" if bert else "Macaron Net"
    with tempfile.TemporaryDirectory() as assets_folder:
        return model.save_pretrained(
            out,
            metadata={
                "preset": out.name,
                "description": f"{family} ({args.arch}) converted from the fairseq checkpoint {name}.",
                "converted_from": converted,
            },
            assets=tokenizer.save(assets_folder),
        )
