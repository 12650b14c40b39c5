"""`odezoo convert fairseq`: the Macaron family's converter (see `odezoo.commands`)."""

from odezoo.commands import Command


def _arguments(p):
    p.add_argument("checkpoint", help="the checkpoint file (checkpoint_*.pt)")
    p.add_argument("--dict", required=True, dest="dictionary", help="the dict.txt it was trained with")
    p.add_argument(
        "--bpe-codes", help="subword-nmt or fastBPE codes of its data (for a dictionary of @@ subwords)"
    )
    p.add_argument("--out", required=True, help="the preset folder to write")


def convert_command(args):
    """Writes the preset folder `args.out` from the fairseq checkpoint `args.checkpoint`."""
    from odezoo.models.macaron.macaron_convert import convert_fairseq  # deferred: it imports TensorFlow

    return convert_fairseq(args.checkpoint, args.dictionary, args.out, bpe_codes=args.bpe_codes)


CONVERTERS = (
    Command(
        "fairseq",
        "fairseq: Macaron Net translation models and Macaron-BERT",
        _arguments,
        "odezoo.models.macaron.macaron_commands:convert_command",
    ),
)
