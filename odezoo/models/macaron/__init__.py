"""Macaron Net (2019): the Transformer layer as a Strang–Marchuk splitting step, FFN → attention → FFN."""

from typing import TYPE_CHECKING

from odezoo._lazy import lazy_exports

if TYPE_CHECKING:
    from odezoo.models.macaron.macaron import MacaronTransformer as MacaronTransformer
    from odezoo.models.macaron.macaron_bert import MacaronBert as MacaronBert

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "MacaronBert": "odezoo.models.macaron.macaron_bert",
        "MacaronTransformer": "odezoo.models.macaron.macaron",
    },
)
