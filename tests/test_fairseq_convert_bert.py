"""`odezoo convert fairseq` on the BERT fork's checkpoints: synthetic ones in the fork's exact layout
(docs/papers.md#macaron-checkpoints; `FairseqBertModel` / `FairseqClassifierModel` of the fork), the converted
`MacaronBert` against a NumPy forward pass of the fork's equations (docs/papers.md#macaron-bert) on the state
dict, the preset's fastBPE tokenizer, and one clear message per bad input."""

import argparse
import math
from collections import OrderedDict

import numpy as np
import pytest
import scipy.special
from test_fairseq_convert import (  # the translation converter's checkpoint writer and NumPy pieces
    HEADS,
    LAYERS,
    PAD,
    E,
    attention,
    fairseq_meters,  # noqa: F401 (a fixture)
    linear,
    save_checkpoint,
    sinusoids,
    write_dict,
)

import odezoo
from odezoo.cli import main
from odezoo.errors import OdezooError
from odezoo.models.macaron.macaron_bert_inputs import CLS_ID, encode_examples, pack_inputs
from odezoo.models.macaron.macaron_convert import BERT_ARCHITECTURES, convert_fairseq

pytestmark = pytest.mark.convert

FFN = 6  # the width of each FFN (fairseq's encoder_ffn_embed_dim)
SYMBOLS = ["the", "and", "b@@", "th@@", "e@@", "n", "m", ".", "t@@", "h@@", "a@@", "d@@", "e", "d", "'s", ","]
V = 6 + len(SYMBOLS)  # fairseq's 4 specials, then the fork's <mask> and <cls>: 22 rows
CODES = "t h 10\nth e</w> 8\na n 5\nan d</w> 4\n"  # fastBPE's `bpe-code`: `a b count` per line, no header
EOS = 2


def bert_args(arch="transformer_bert_base_macaron", **changes):
    """The `args` the fork saves, filled in by its arch functions (tiny dims)."""
    classifier = arch.startswith("transformer_classifier")
    args = {
        "arch": arch,
        "task": "glue" if classifier else "bert",
        "macaron": arch.endswith("macaron"),
        "encoder_embed_dim": E,
        "encoder_ffn_embed_dim": FFN,
        "encoder_layers": LAYERS,
        "encoder_attention_heads": HEADS,
        "encoder_normalize_before": True,
        "encoder_learned_pos": False,
        "no_token_positional_embeddings": False,
        "no_normalize_affine": True,
        "act_fn": "gelu",
        "dropout": 0.1,
        "attention_dropout": 0.1,
        "relu_dropout": 0.0,
        "max_positions": 256 if classifier else 384,
        "encoder_embed_path": None,
        **({"n_classes": 3} if classifier else {"share_all_embeddings": True, "masked_lm_prob": 0.15}),
    }
    return argparse.Namespace(**(args | changes))


def bert_state(arch="transformer_bert_base_macaron", seed=0, n_classes=3):
    """A state dict with the fork's keys, order and shapes (float32 NumPy): `FairseqBertModel`'s
    `embed_out` (the token embedding registered again), `encoder.*` (no LayerNorm weights), `mid_layer`
    and the next-sentence `classifier` (E → 1); or `FairseqClassifierModel`'s `encoder.*` and
    `classifier` (E → n_classes)."""
    rng = np.random.default_rng(seed)
    head, macaron = BERT_ARCHITECTURES[arch]
    state = OrderedDict()

    def normal(*shape, scale=0.5):
        return (scale * rng.standard_normal(shape)).astype("float32")

    def dense(key, out, inp):
        state[f"{key}.weight"], state[f"{key}.bias"] = normal(out, inp), normal(out, scale=0.1)

    embedding = normal(V, E)
    embedding[PAD] = 0
    if head == "masked_lm":
        state["embed_out"] = (
            embedding  # the same tensor: `TransformerBertModel(..., embed_tokens.weight, ...)`
        )
    state["encoder.version"] = np.array([2], "float32")
    state["encoder.embed_tokens.weight"] = embedding
    state["encoder.embed_positions._float_tensor"] = np.zeros(1, "float32")
    state["encoder.embed_segment.weight"] = normal(2, E)
    state["encoder.embed_segment.weight"][PAD] = 0  # `Embedding(2, E, padding_idx=1)`
    for i in range(LAYERS):
        key = f"encoder.layers.{i}"
        state[f"{key}.self_attn.in_proj_weight"] = normal(3 * E, E)
        state[f"{key}.self_attn.in_proj_bias"] = normal(3 * E)
        dense(f"{key}.self_attn.out_proj", E, E)
        names = ("fc", "macaron_fc") if macaron else ("fc",)
        for name in names:
            dense(f"{key}.{name}1", FFN, E)
            dense(f"{key}.{name}2", E, FFN)
    if head == "masked_lm":
        dense("mid_layer.0", E, E)
        state["mid_layer.2.weight"], state["mid_layer.2.bias"] = (
            1 + normal(E, scale=0.1),
            normal(E, scale=0.1),
        )
        dense("classifier", 1, E)
    else:
        dense("classifier", n_classes, E)
    return state


# === A forward pass of the fork's equations (docs/papers.md#macaron-bert, #macaron-checkpoints),
# NumPy float64 ===


def norm(x):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)  # no affine


def gelu(x):
    return x * 0.5 * (1.0 + scipy.special.erf(x / math.sqrt(2.0)))  # the fork's `gelu`


def reference_encoder(s, tokens, segments, macaron):
    """`TransformerEncoder.forward` of the fork with `require_segment`: `encoder_out`, batch first."""
    mask = tokens != PAD
    positions = PAD + np.cumsum(mask, axis=1) * mask  # `make_positions`, right padding
    x = math.sqrt(E) * s["encoder.embed_tokens.weight"][tokens] + sinusoids(positions)
    x = x + s["encoder.embed_segment.weight"][segments]
    keys = np.repeat(mask[:, None, :], tokens.shape[1], axis=1)
    for i in range(LAYERS):
        p = f"encoder.layers.{i}"
        if macaron:
            x = x + 0.5 * linear(s, f"{p}.macaron_fc2", np.maximum(linear(s, f"{p}.macaron_fc1", norm(x)), 0))
        h = norm(x)
        x = x + attention(s, f"{p}.self_attn", h, h, keys)
        x = x + (0.5 if macaron else 1.0) * linear(s, f"{p}.fc2", gelu(linear(s, f"{p}.fc1", norm(x))))
    return norm(x)


def reference_outputs(state, tokens, segments, arch):
    """Masked-LM logits at every position (`F.linear(mid_layer(h), embed_out)`), or the classifier's
    logits of the first (`<cls>`) position."""
    s = {k: v.astype("float64") for k, v in state.items()}
    head, macaron = BERT_ARCHITECTURES[arch]
    h = reference_encoder(s, tokens, segments, macaron)
    if head == "classifier":
        return linear(s, "classifier", h[:, 0])
    mid = gelu(linear(s, "mid_layer.0", h))
    mid = norm(mid) * s["mid_layer.2.weight"] + s["mid_layer.2.bias"]
    return mid @ s["encoder.embed_tokens.weight"].T


# `<cls> s1 </s> [s2 </s>]`, right-padded; segments 1 over the first sentence and padding, 0 over the second
IDS = [
    [CLS_ID, 7, 8, 9, EOS, 10, 11, EOS],
    [CLS_ID, 12, 13, EOS],
    [CLS_ID, 14, EOS, 15, 16, 17, 18, 19, 20, EOS],
]
INPUTS = pack_inputs(IDS, [5, 4, 3])


@pytest.fixture
def bert_files(tmp_path, fairseq_meters):  # noqa: F811
    """`(checkpoint, dict.txt, fastBPE codes, state)` of a synthetic pre-trained Macaron-BERT checkpoint."""
    (tmp_path / "bpe-code").write_text(CODES, encoding="utf-8")
    state = bert_state()
    checkpoint = save_checkpoint(tmp_path / "checkpoint_pretrained.pt", fairseq_meters, state, bert_args())
    return checkpoint, write_dict(tmp_path / "dict.txt", SYMBOLS), tmp_path / "bpe-code", state


@pytest.mark.parametrize("arch", BERT_ARCHITECTURES)
def test_converted_model_matches_the_forks_equations(arch, bert_files, tmp_path, fairseq_meters):  # noqa: F811
    _, dictionary, codes, _ = bert_files
    head, macaron = BERT_ARCHITECTURES[arch]
    state = bert_state(arch, seed=1)
    checkpoint = save_checkpoint(tmp_path / "model.pt", fairseq_meters, state, bert_args(arch))
    summary = convert_fairseq(checkpoint, dictionary, tmp_path / "preset", bpe_codes=codes)
    next_sentence = {"classifier.weight", "classifier.bias"} if head == "masked_lm" else set()
    assert summary["vocabulary_size"] == V and set(summary["left_out"]) == next_sentence
    model = odezoo.load(tmp_path / "preset")
    assert (model.num_layers, model.hidden_dim, model.num_heads) == (LAYERS, E, HEADS)
    assert (model.scheme, model.intermediate_dim) == (
        ("strang", 2 * FFN) if macaron else ("lie_trotter", FFN)
    )
    assert model.num_classes == (3 if head == "classifier" else None)
    assert model.task.name == ("text_classification" if head == "classifier" else "masked_lm")
    outputs = np.asarray(model.predict(INPUTS, verbose=0))
    expected = reference_outputs(state, INPUTS["token_ids"], INPUTS["segment_ids"], arch)
    real = INPUTS["padding_mask"] == 1
    if head == "masked_lm":
        outputs, expected = outputs[real], expected[real]
    np.testing.assert_allclose(outputs, expected, atol=2e-5, rtol=0)  # measured: up to 4e-6
    assert np.abs(expected).max() > 1  # the outputs are not trivially small


def test_embed_out_may_be_absent(bert_files, tmp_path, fairseq_meters):  # noqa: F811
    """docs/papers.md#macaron-checkpoints lists no `embed_out`; the fork's `FairseqBertModel` registers the
    shared embedding under that name too. Either way the logits are the token embedding's."""
    checkpoint, dictionary, codes, state = bert_files
    without = {k: v for k, v in state.items() if k != "embed_out"}
    other = save_checkpoint(tmp_path / "no_embed_out.pt", fairseq_meters, without, bert_args())
    logits = []
    for path, name in ((checkpoint, "with"), (other, "without")):
        convert_fairseq(path, dictionary, tmp_path / name, bpe_codes=codes)
        logits.append(np.asarray(odezoo.load(tmp_path / name).predict(INPUTS, verbose=0)))
    np.testing.assert_array_equal(*logits)


def test_preset_holds_the_forks_dictionary_and_fastbpe_tokenizer(bert_files, tmp_path):
    from odezoo.preset_folder import read_metadata

    checkpoint, dictionary, codes, _ = bert_files
    argv = ["convert", "fairseq", str(checkpoint), "--dict", str(dictionary), "--bpe-codes", str(codes)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "bpe.codes").read_text() == CODES  # the fork's file as it is
    model = odezoo.load(tmp_path / "out")
    tokenizer = model.preset_tokenizer()
    assert (
        tokenizer.dictionary.symbols[4:6] == ["<mask>", "<cls>"]
        and tokenizer.dictionary.symbols[6:] == SYMBOLS
    )
    assert not tokenizer.escape and tokenizer.lowercase and tokenizer.source_lang == "en"
    assert (
        tokenizer.tokenize("Then the band's") == "th@@ e@@ n the b@@ and '@@ s"
    )  # fastBPE merges, no escaping
    ids, firsts, _ = encode_examples(tokenizer, [("The band.", "Them, and then the")], model.max_positions)
    assert ids == [[CLS_ID, 6, 8, 7, 13, EOS, 9, 10, 12, 21, 7, 9, 10, 11, 6, EOS]]  # dict.txt line + 6
    assert np.isfinite(model.predict(pack_inputs(ids, firsts), verbose=0)).all()
    converted = read_metadata(tmp_path / "out")["converted_from"]
    assert converted["arch"] == "transformer_bert_base_macaron"
    assert set(converted["left_out"]) == {"classifier.weight", "classifier.bias"}


def test_bad_bert_checkpoints_get_one_clear_message(bert_files, tmp_path, fairseq_meters):  # noqa: F811
    checkpoint, dictionary, codes, state = bert_files

    def saved(name, weights=state, **args):
        return save_checkpoint(tmp_path / name, fairseq_meters, weights, bert_args(**args))

    without = {k: v for k, v in state.items() if k != "encoder.layers.1.fc2.bias"}
    affine = {**state, "encoder.layers.0.layer_norms.0.weight": np.ones(E, "float32")}
    untied = {**state, "embed_out": state["embed_out"] + 1}
    segment = {**state, "encoder.embed_segment.weight": np.ones((2, E), "float32")}
    classifier = bert_state("transformer_classifier_base_macaron", n_classes=2)
    cases = [
        (
            saved("arch.pt", arch="transformer_bert_L6_A12_macaron"),
            r"arch is 'transformer_bert_L6_A12_macaron'; the converter knows the Macaron architectures "
            r"transformer_iwslt_de_en_macaron_v2, .*, transformer_bert_base_macaron, transformer_bert_base, "
            r"transformer_classifier_base_macaron, transformer_classifier_base\.",
        ),
        (saved("missing.pt", without), r"state dict has no 'encoder\.layers\.1\.fc2\.bias'"),
        (
            saved("affine.pt", affine),
            r"holds weights a transformer_bert_base_macaron MacaronBert has no place for: "
            r"encoder\.layers\.0\.layer_norms\.0\.weight\.",
        ),
        (
            saved("postnorm.pt", encoder_normalize_before=False),
            r"args set encoder_normalize_before=False; MacaronBert is the fork's "
            r"transformer_bert_base_macaron with encoder_normalize_before=True, no_normalize_affine=True, "
            r"act_fn='gelu'",
        ),
        (saved("relu.pt", act_fn="relu"), r"args set act_fn='relu'; MacaronBert is the fork's"),
        (saved("unshared.pt", share_all_embeddings=False), r"args set share_all_embeddings=False;"),
        (
            saved("untied.pt", untied),
            r"embeddings are shared but its embed_out and encoder\.embed_tokens\.weight differ",
        ),
        (
            saved("segment.pt", segment),
            r"embed_segment\.weight row 1 \(fairseq's padding row, .*\) is not zero",
        ),
        (
            saved("wide.pt", encoder_ffn_embed_dim=4),
            r"checkpoint's encoder\.layers\.0\.macaron_fc1\.weight \(6, 8\) does not fit the model its args "
            r"describe \(encoder_layer_0/macaron_ffn/inner/kernel \(8, 4\), taken from it as \(8, 6\)\)",
        ),
        (
            saved("classes.pt", classifier, arch="transformer_classifier_base_macaron"),
            r"classifier\.weight \(2, 8\) does not fit the model its args describe \(head/kernel \(8, 3\)",
        ),
    ]
    out = tmp_path / "out"
    for path, message in cases:
        with pytest.raises(OdezooError, match=message):
            convert_fairseq(path, dictionary, out, bpe_codes=codes)
    with pytest.raises(
        OdezooError, match=r"has 12 symbols \(fairseq's 6 specials included\) but the checkpoint's "
    ):
        convert_fairseq(checkpoint, write_dict(tmp_path / "small.txt", SYMBOLS[:6]), out, bpe_codes=codes)
    with pytest.raises(OdezooError, match=r"holds BPE subwords \(e\.g\. 'b@@'\) but no --bpe-codes"):
        convert_fairseq(checkpoint, dictionary, out)
    assert not out.exists()
