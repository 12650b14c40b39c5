"""`odezoo convert fairseq`: synthetic checkpoints in fairseq's exact layout
(docs/papers.md#macaron-checkpoints), the converted model against a NumPy forward pass of fairseq's equations
(docs/papers.md#macaron-layer) on the state dict, and one clear message per bad input, a checkpoint that would
run code included."""

import argparse
import json
import math
import os
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import odezoo
from odezoo.cli import main
from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron import CONFIGS, INPUT_NAMES
from odezoo.models.macaron.macaron_convert import (
    ARCHITECTURES,
    convert_fairseq,
    model_config,
    read_checkpoint,
)
from odezoo.models.macaron.macaron_tokenizer import Dictionary

torch = pytest.importorskip("torch", reason="needs PyTorch: pip install 'odezoo[convert]'")

pytestmark = pytest.mark.convert  # deselected by default; CI installs the CPU wheel first

E, HEADS, FFN, LAYERS = 8, 2, 6, 2  # embed dim, heads, width of each FFN, layers
SYMBOLS = ["the", "a", "haus", "house", "ist", "is", "gro@@", "ß", "big", ".", "th@@", "e"]
V = 4 + len(SYMBOLS)  # fairseq's 4 specials; 16, a multiple of 8 as fairseq pads it
PAD, EOS = 1, 2


def fairseq_args(**changes):
    """The `args` fairseq saves, filled in by `transformer_iwslt_de_en_macaron_v2` (tiny dims)."""
    args = {
        "arch": "transformer_iwslt_de_en_macaron_v2",
        "task": "translation",
        "source_lang": "de",
        "target_lang": "en",
        "macaron": True,
        "share_all_embeddings": True,
        "share_decoder_input_output_embed": True,
        "dropout": 0.3,
        "attention_dropout": 0.1,
        "relu_dropout": 0.1,
        "max_source_positions": 1024,
        "max_target_positions": 1024,
        "lr": [0.0015],
        "adam_betas": "(0.9, 0.98)",
    }
    for side in ("encoder", "decoder"):
        args |= {
            f"{side}_embed_dim": E,
            f"{side}_ffn_embed_dim": FFN,
            f"{side}_layers": LAYERS,
            f"{side}_attention_heads": HEADS,
            f"{side}_normalize_before": True,
            f"{side}_learned_pos": False,
        }
    return argparse.Namespace(**(args | changes))


def fairseq_state(seed=0, shared=True):
    """A state dict with fairseq's keys and shapes (float32 NumPy); `shared`: one embedding matrix
    (`--share-all-embeddings`), else three (`decoder.embed_out` projects to the logits)."""
    rng = np.random.default_rng(seed)
    state = OrderedDict()

    def normal(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype("float32")

    def linear(key, out, inp):
        state[f"{key}.weight"], state[f"{key}.bias"] = normal(out, inp), normal(out, scale=0.1)

    def attention(key):
        state[f"{key}.in_proj_weight"], state[f"{key}.in_proj_bias"] = normal(3 * E, E), normal(3 * E)
        linear(f"{key}.out_proj", E, E)

    def norm(key):
        state[f"{key}.weight"], state[f"{key}.bias"] = 1 + normal(E, scale=0.1), normal(E, scale=0.1)

    def ffns(key):
        for name in ("fc", "macaron_fc"):
            linear(f"{key}.{name}1", FFN, E)
            linear(f"{key}.{name}2", E, FFN)

    embedding = normal(V, E)
    embedding[PAD] = 0
    state["encoder.version"] = np.array([2], "float32")
    state["encoder.embed_tokens.weight"] = embedding
    state["encoder.embed_positions._float_tensor"] = np.zeros(1, "float32")
    for i in range(LAYERS):
        attention(f"encoder.layers.{i}.self_attn")
        ffns(f"encoder.layers.{i}")
        for j in range(3):
            norm(f"encoder.layers.{i}.layer_norms.{j}")
    norm("encoder.layer_norm")
    if shared:
        state["decoder.embed_tokens.weight"] = embedding
    else:
        state["decoder.embed_tokens.weight"] = normal(V, E)
        state["decoder.embed_tokens.weight"][PAD] = 0
    state["decoder.embed_positions._float_tensor"] = np.zeros(1, "float32")
    for i in range(LAYERS):
        for name in ("self_attn", "encoder_attn"):
            attention(f"decoder.layers.{i}.{name}")
        ffns(f"decoder.layers.{i}")
        for name in (
            "self_attn_layer_norm",
            "encoder_attn_layer_norm",
            "macaron_layer_norm",
            "final_layer_norm",
        ):
            norm(f"decoder.layers.{i}.{name}")
    norm("decoder.layer_norm")
    if not shared:
        state["decoder.embed_out"] = normal(V, E)
    state["decoder.version"] = np.array([2], "float32")
    return state


@pytest.fixture
def fairseq_meters(monkeypatch):
    """Classes named as fairseq's meters (`fairseq.meters.*`), importable only while saving."""
    module = types.ModuleType("fairseq.meters")
    for name in ("AverageMeter", "TimeMeter", "StopwatchMeter"):
        setattr(module, name, type(name, (), {"__module__": "fairseq.meters"}))
    monkeypatch.setitem(sys.modules, "fairseq", types.ModuleType("fairseq"))
    monkeypatch.setitem(sys.modules, "fairseq.meters", module)
    return module


def save_checkpoint(path, meters, state, args=None, legacy=False, **extra):
    """Writes `path` as fairseq's `utils.save_state` does, with `torch.save`; returns `path`."""
    tensors = {}
    weights = OrderedDict((k, tensors.setdefault(id(v), torch.from_numpy(v))) for k, v in state.items())
    average, time, stopwatch = meters.AverageMeter(), meters.TimeMeter(), meters.StopwatchMeter()
    average.__dict__.update(val=3.1, avg=3.4, sum=340.0, count=100)
    time.__dict__.update(init=0, start=1.7e9, n=5000)
    stopwatch.__dict__.update(sum=12.5, n=100, start_time=None)
    checkpoint = {
        "args": args or fairseq_args(),
        "model": weights,
        "optimizer_history": [
            {"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
             "lr_scheduler_state": {"best": 3.2}, "num_updates": 1000}
        ],
        "last_optimizer_state": {"state": {0: {"step": 1000, "exp_avg": torch.zeros(3)}}, "param_groups": []},
        "extra_state": {
            "best": 3.2,
            "train_iterator": {"epoch": 3, "iterations_in_epoch": 0},
            "val_loss": 3.2,
            "train_meters": OrderedDict(train_loss=average, wps=time, wall=stopwatch),
        },
        **extra,
    }  # fmt: skip
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return path


def write_dict(path, symbols=SYMBOLS):
    path.write_text("".join(f"{s} {100 - i}\n" for i, s in enumerate(symbols)), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path, fairseq_meters):
    """`(checkpoint, dict.txt, bpe codes, state)` of a synthetic IWSLT-style checkpoint."""
    state = fairseq_state()
    codes = tmp_path / "code"
    codes.write_text("#version: 0.2\nt h\ng r\ngr o\n", encoding="utf-8")
    checkpoint = save_checkpoint(tmp_path / "checkpoint_best.pt", fairseq_meters, state)
    return checkpoint, write_dict(tmp_path / "dict.de-en.txt"), codes, state


# === A forward pass of fairseq's equations (docs/papers.md#macaron-layer, #macaron-checkpoints),
# NumPy float64 ===


def sinusoids(positions):
    half = E // 2
    frequencies = np.exp(-np.arange(half) * math.log(10000) / (half - 1))
    angles = positions[..., None] * frequencies
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)
    return np.where((positions == PAD)[..., None], 0.0, table)


def layer_norm(s, key, x):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * s[f"{key}.weight"] + s[f"{key}.bias"]


def linear(s, key, x):
    return x @ s[f"{key}.weight"].T + s[f"{key}.bias"]


def attention(s, key, x, y, allowed):
    """fairseq's multi-head attention; `allowed` (batch, T, S)."""
    q, k, v = np.split(s[f"{key}.in_proj_weight"], 3)
    bq, bk, bv = np.split(s[f"{key}.in_proj_bias"], 3)
    d = E // HEADS

    def heads(z):
        return z.reshape(*z.shape[:2], HEADS, d).transpose(0, 2, 1, 3)

    q, k, v = heads((x @ q.T + bq) * d**-0.5), heads(y @ k.T + bk), heads(y @ v.T + bv)
    scores = np.where(allowed[:, None], q @ k.transpose(0, 1, 3, 2), -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(*x.shape)
    return linear(s, f"{key}.out_proj", out)


def ffn(s, key, name, norm, x):
    h = np.maximum(linear(s, f"{key}.{name}1", layer_norm(s, norm, x)), 0)
    return x + 0.5 * linear(s, f"{key}.{name}2", h)


def embed(s, side, tokens, mask):
    positions = PAD + np.cumsum(mask, axis=1) * mask
    return math.sqrt(E) * s[f"{side}.embed_tokens.weight"][tokens] + sinusoids(positions)


def reference_logits(state, source, source_mask, target, target_mask):
    s = {k: v.astype("float64") for k, v in state.items()}
    x = embed(s, "encoder", source, source_mask)
    keys = np.repeat(source_mask[:, None, :] == 1, source.shape[1], axis=1)
    for i in range(LAYERS):
        p = f"encoder.layers.{i}"
        x = ffn(s, p, "macaron_fc", f"{p}.layer_norms.2", x)
        h = layer_norm(s, f"{p}.layer_norms.0", x)
        x = x + attention(s, f"{p}.self_attn", h, h, keys)
        x = ffn(s, p, "fc", f"{p}.layer_norms.1", x)
    memory = layer_norm(s, "encoder.layer_norm", x)
    length = target.shape[1]
    causal = np.tril(np.ones((length, length), bool))[None] & (target_mask[:, None, :] == 1)
    cross = np.repeat(source_mask[:, None, :] == 1, length, axis=1)
    x = embed(s, "decoder", target, target_mask)
    for i in range(LAYERS):
        p = f"decoder.layers.{i}"
        x = ffn(s, p, "macaron_fc", f"{p}.macaron_layer_norm", x)
        h = layer_norm(s, f"{p}.self_attn_layer_norm", x)
        x = x + attention(s, f"{p}.self_attn", h, h, causal)
        x = x + attention(
            s, f"{p}.encoder_attn", layer_norm(s, f"{p}.encoder_attn_layer_norm", x), memory, cross
        )
        x = ffn(s, p, "fc", f"{p}.final_layer_norm", x)
    return (
        layer_norm(s, "decoder.layer_norm", x)
        @ s.get("decoder.embed_out", s["decoder.embed_tokens.weight"]).T
    )


def reference_greedy(state, source, source_mask, steps):
    tokens = np.full((len(source), 1), EOS)
    for _ in range(steps):
        logits = reference_logits(state, source, source_mask, tokens, np.ones_like(tokens))
        tokens = np.concatenate([tokens, logits[:, -1].argmax(-1)[:, None]], axis=1)
    return tokens[:, 1:]


def reference_beam_of_one(state, source, source_mask, max_length):
    """fairseq's beam search with beam 1 (min_len 1, no unk penalty): the arg-max token, `<pad>` never,
    `</s>` not first and forced after `max_length` tokens; `</s>` ends the hypothesis."""
    hypotheses = []
    for row in range(len(source)):
        tokens = [EOS]
        while tokens[-1] != EOS or len(tokens) == 1:
            target = np.array([tokens])
            logits = reference_logits(state, source[[row]], source_mask[[row]], target, np.ones_like(target))
            logits = logits[0, -1]
            logits[PAD] = -np.inf
            if len(tokens) == 1:
                logits[EOS] = -np.inf
            tokens.append(EOS if len(tokens) == max_length + 1 else int(logits.argmax()))
        hypotheses.append(tokens[1:])
    return hypotheses


# fairseq's layout: sources end with </s> and are left-padded, targets start with </s> and are right-padded
SOURCE = np.array([[PAD, PAD, 4, 6, 7, EOS], [5, 8, 9, 10, 11, EOS], [PAD, PAD, PAD, PAD, 12, EOS]])
TARGET = np.array([[EOS, 5, 7, 13, PAD], [EOS, 6, 8, 9, 14], [EOS, 15, PAD, PAD, PAD]])


@pytest.mark.parametrize("shared", [True, False], ids=["shared_embeddings", "three_embeddings"])
def test_converted_model_matches_fairseq_equations(files, tmp_path, fairseq_meters, shared):
    checkpoint, dictionary, codes, state = files
    if not shared:
        state = fairseq_state(seed=1, shared=False)
        args = fairseq_args(share_all_embeddings=False, share_decoder_input_output_embed=False)
        checkpoint = save_checkpoint(tmp_path / "three.pt", fairseq_meters, state, args)
    summary = convert_fairseq(checkpoint, dictionary, tmp_path / "macaron_iwslt", bpe_codes=codes)
    assert summary["arch"] == "transformer_iwslt_de_en_macaron_v2" and summary["vocabulary_size"] == V
    model = odezoo.load(tmp_path / "macaron_iwslt")
    assert (model.num_layers, model.hidden_dim, model.num_heads, model.intermediate_dim) == (
        LAYERS,
        E,
        HEADS,
        2 * FFN,
    )
    masks = [(SOURCE != PAD).astype("int32"), (TARGET != PAD).astype("int32")]
    inputs = dict(zip(INPUT_NAMES, [SOURCE.astype("int32"), masks[0], TARGET.astype("int32"), masks[1]]))
    logits = np.asarray(model(inputs))
    expected = reference_logits(state, SOURCE, masks[0], TARGET, masks[1])
    real = masks[1] == 1
    np.testing.assert_allclose(logits[real], expected[real], atol=1e-5, rtol=0)
    greedy = model.greedy_decode(SOURCE, masks[0], max_length=5, end_id=-1)
    np.testing.assert_array_equal(greedy, reference_greedy(state, SOURCE, masks[0], 5))
    beam = model.beam_search(SOURCE, masks[0], beam=1, max_len_b=5)
    for row, expected in zip(beam, reference_beam_of_one(state, SOURCE, masks[0], 5)):
        assert row[: len(expected)].tolist() == expected and (row[len(expected) :] == PAD).all()


def test_preset_folder_keeps_fairseq_ids_and_provenance(files, tmp_path):
    from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer
    from odezoo.preset_folder import read_metadata, sha256_of

    checkpoint, dictionary, codes, _ = files
    assert main(["convert", "fairseq", str(checkpoint), "--dict", str(dictionary), "--bpe-codes", str(codes),
                 "--out", str(tmp_path / "out")]) == 0  # fmt: skip
    tokenizer = MacaronTokenizer.load(tmp_path / "out")
    assert tokenizer.dictionary.symbols[4:] == SYMBOLS and tokenizer.bpe_codes == codes.read_text()
    assert tokenizer.lowercase and (tokenizer.source_lang, tokenizer.target_lang) == ("de", "en")
    # IWSLT's data was tokenised without -a: hyphens stay, and tokenizer.json is as before
    assert not tokenizer.aggressive_dash_splits
    assert tokenizer.tokenize("well-known").replace("@@ ", "") == "well-known"
    assert "aggressive_dash_splits" not in (tmp_path / "out" / "tokenizer.json").read_text()
    assert tokenizer.tokenize("The groß.") == "th@@ e gro@@ ß ."
    assert tokenizer.to_ids("The groß.").tolist() == [14, 15, 10, 11, 13, EOS]  # dict.txt line + 3
    converted = read_metadata(tmp_path / "out")["converted_from"]
    assert converted["sha256"] == sha256_of(checkpoint) and converted["checkpoint"] == "checkpoint_best.pt"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_arch_defaults_are_the_papers_configurations(arch):
    config = model_config(argparse.Namespace(arch=arch))  # fields the args leave out: the arch's values
    assert {k: config[k] for k in CONFIGS[ARCHITECTURES[arch]]} == CONFIGS[ARCHITECTURES[arch]]


def test_meters_are_read_as_inert_stand_ins(tmp_path, fairseq_meters, monkeypatch):
    path = save_checkpoint(tmp_path / "legacy.pt", fairseq_meters, fairseq_state(), legacy=True)
    monkeypatch.delitem(sys.modules, "fairseq.meters")  # as where fairseq is not installed
    checkpoint = read_checkpoint(path)
    meter = checkpoint["extra_state"]["train_meters"]["train_loss"]
    assert type(meter).__name__ == "AverageMeter" and type(meter).__module__ != "fairseq.meters"
    assert vars(meter) == {"val": 3.1, "avg": 3.4, "sum": 340.0, "count": 100}
    assert checkpoint["args"] == fairseq_args()


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_checkpoint_that_would_run_code_is_refused_unrun(tmp_path, fairseq_meters):
    marker = tmp_path / "ran"
    path = save_checkpoint(tmp_path / "evil.pt", fairseq_meters, fairseq_state(), payload=_RunsShell(marker))
    with pytest.raises(OdezooError, match=r"needs the Python object \S*system to be read.*refused, nothing"):
        read_checkpoint(path)
    assert not marker.exists()


def test_bad_inputs_get_one_clear_message(files, tmp_path, fairseq_meters, capsys):
    checkpoint, dictionary, codes, state = files
    out = tmp_path / "out"
    with zipfile.ZipFile(tmp_path / "random.pt", "w") as archive:
        archive.writestr("archive/data.pkl", np.random.default_rng(0).bytes(256))
    (tmp_path / "bytes.pt").write_bytes(np.random.default_rng(1).bytes(256))
    torch.save({"state": torch.zeros(2)}, tmp_path / "nomodel.pt")
    bad_arch = save_checkpoint(
        tmp_path / "a.pt", fairseq_meters, state, fairseq_args(arch="transformer_wmt_en_de")
    )
    bad_heads = save_checkpoint(
        tmp_path / "h.pt", fairseq_meters, state, fairseq_args(decoder_attention_heads=4)
    )
    extra = save_checkpoint(
        tmp_path / "x.pt", fairseq_meters, {**state, "decoder.embed_out": state["encoder.version"]}
    )
    wide = fairseq_args(encoder_embed_dim=16, decoder_embed_dim=16)
    wide = save_checkpoint(tmp_path / "w.pt", fairseq_meters, state, wide)
    cases = [
        (tmp_path / "random.pt", dictionary, r"Cannot read .*random\.pt as a PyTorch checkpoint \("),
        (tmp_path / "bytes.pt", dictionary, r"Cannot read .*bytes\.pt as a PyTorch checkpoint \("),
        (tmp_path / "nomodel.pt", dictionary, r"holds a dict with keys \['state'\], not a fairseq "),
        (tmp_path / "missing.pt", dictionary, r"No checkpoint file at .*missing\.pt"),
        (
            bad_arch,
            dictionary,
            r"arch is 'transformer_wmt_en_de'; the converter knows the Macaron architectures "
            r"transformer_iwslt_de_en_macaron_v2, transformer_wmt_en_de_macaron_v2, "
            r"transformer_wmt_en_de_big_t2t_macaron, transformer_bert_base_macaron, ",
        ),
        (
            checkpoint,
            write_dict(tmp_path / "small.txt", SYMBOLS[:4]),
            r"--dict .*small\.txt has 8 symbols .* but the checkpoint's embedding has 16 rows",
        ),
        (
            bad_heads,
            dictionary,
            r"encoder_attention_heads and decoder_attention_heads differ \(\[2, 4\]\)",
        ),
        (
            extra,
            dictionary,
            r"has no place for: decoder\.embed_out\.",
        ),
        (
            wide,
            dictionary,
            r"checkpoint's encoder\.layers\.0\.macaron_fc1\.weight \(6, 8\) does not fit the model its args "
            r"describe \(encoder_layer_0/macaron_ffn/inner/kernel \(16, 6\), taken from it as \(8, 6\)\)",
        ),
        (checkpoint, tmp_path / "nodict.txt", r"--dict .*nodict\.txt is not a file\."),
    ]  # fmt: skip
    for path, vocabulary, message in cases:
        with pytest.raises(OdezooError, match=message):
            convert_fairseq(path, vocabulary, out, bpe_codes=codes)
    with pytest.raises(OdezooError, match=r"--bpe-codes .*nocodes is not a file\."):
        convert_fairseq(checkpoint, dictionary, out, bpe_codes=tmp_path / "nocodes")
    with pytest.raises(
        OdezooError, match=r"--dict .*dict\.de-en\.txt holds BPE subwords \(e\.g\. 'gro@@'\) but no "
    ):
        convert_fairseq(checkpoint, dictionary, out)
    assert not out.exists()
    assert main(["convert", "fairseq", str(checkpoint), "--dict", str(dictionary), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("odezoo convert: error: --dict ") and "\n" not in error


HYPHENATED = "a well-known data-driven method"


@pytest.mark.parametrize("hyphen", ["@-@", "##AT##-##AT##"])
def test_wmt_data_is_tokenised_with_aggressive_hyphen_splits(tmp_path, fairseq_meters, hyphen):
    """A WMT14-layout checkpoint whose dictionary holds the token of Moses' `-a` (`prepare-wmt14en2de.sh`:
    `@-@`, or the older `##AT##-##AT##`): its preset splits hyphens as its data was, and joins them back."""
    from sacremoses import MosesTokenizer

    from odezoo.models.macaron.macaron_tokenizer import MacaronTokenizer

    symbols = ["a", "well", hyphen, "known", "data", "driven", "method", ".", "eine", "gut", "bekannte", "es"]
    args = fairseq_args(arch="transformer_wmt_en_de_macaron_v2", source_lang="en", target_lang="de")
    checkpoint = save_checkpoint(tmp_path / "checkpoint_best.pt", fairseq_meters, fairseq_state(), args)
    dictionary = write_dict(tmp_path / "dict.en.txt", symbols)
    convert_fairseq(checkpoint, dictionary, tmp_path / "wmt")
    assert json.loads((tmp_path / "wmt" / "tokenizer.json").read_text())["aggressive_dash_splits"] is True
    tokenizer = MacaronTokenizer.load(tmp_path / "wmt")
    moses = " ".join(MosesTokenizer("en").tokenize(HYPHENATED, aggressive_dash_splits=True, escape=True))
    assert moses == "a well @-@ known data @-@ driven method"  # Moses' -a
    line = tokenizer.tokenize(HYPHENATED)
    assert line == moses.replace("@-@", hyphen)
    ids = tokenizer.to_ids(HYPHENATED)
    assert Dictionary.UNK_ID not in ids and tokenizer.dictionary.decode(ids) == line
    assert tokenizer.detokenize(line, "en") == HYPHENATED and tokenizer.decode(ids[None]) == [HYPHENATED]
    model = odezoo.load(tmp_path / "wmt")
    assert len(model.translate([HYPHENATED], beam=1, max_len_b=3)) == 1
    convert_fairseq(checkpoint, dictionary, tmp_path / "off", aggressive_dash_splits=False)  # overridden
    off = MacaronTokenizer.load(tmp_path / "off")
    assert not off.aggressive_dash_splits and off.tokenize(HYPHENATED) == HYPHENATED
