"""Sentence classification tasks: GLUE through TensorFlow Datasets (`glue/<task>`) and the offline
dictionary subject tags (`dictionary_tags`, `odezoo.data.text.dictionary_tags`). Each task's sentence
fields, label space and evaluation splits, its examples as text tuples, the checks of examples and
labels, and its metrics (scikit-learn / SciPy). Tokenisation stays with the model family.

GLUE's test splits carry no labels (TFDS stores -1): scores come from the validation splits.
"""

import difflib
from dataclasses import dataclass

import numpy as np

from odezoo.data._tfds import tfds_split
from odezoo.data.text import SUBJECT_TAGS
from odezoo.errors import OdezooError

STSB_RANGE = (0.0, 5.0)  # STS-B similarity scores
MNLI_VALIDATION = ("validation_matched", "validation_mismatched")


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task as TFDS stores it.

    Attributes:
        name: the TFDS config (`glue/<name>`).
        keys: the sentence fields of an example, in the order they are encoded (one or two).
        num_classes: the label classes; 1 for STS-B's regression score in [0, 5].
        metrics: what `glue_metrics` reports, the headline first.
        validation: the labelled evaluation splits (MNLI: matched and mismatched).
        label_names: the name of each class id (TFDS's), empty for STS-B's score.
    """

    name: str
    keys: tuple[str, ...]
    num_classes: int
    metrics: tuple[str, ...] = ("accuracy",)
    validation: tuple[str, ...] = ("validation",)
    label_names: tuple[str, ...] = ()

    @property
    def dataset(self):
        return f"glue/{self.name}"

    def rows(self, split, *, limit=0, data_dir=None, download=True):
        """`(sentence tuples, raw labels)` of the first `limit` (0: all) examples of a TFDS split."""
        ds, _ = tfds_split(self.dataset, split, data_dir, download, supervised=False)
        examples, labels = [], []
        for row in (ds.take(limit) if limit else ds).as_numpy_iterator():
            examples.append(tuple(row[key].decode("utf-8") for key in self.keys))
            labels.append(row["label"])
        return examples, labels

    @property
    def is_regression(self):
        return self.num_classes == 1

    def check_examples(self, examples):
        """`examples` as a list of tuples of `len(keys)` strings; a bare string is one sentence.
        Raises where an example has another number of sentences than the task."""
        checked = []
        for i, example in enumerate(examples):
            sentences = (example,) if isinstance(example, str) else tuple(example)
            if len(sentences) != len(self.keys) or not all(isinstance(s, str) for s in sentences):
                wanted = f"a pair ({', '.join(self.keys)})" if len(self.keys) == 2 else "one sentence"
                raise OdezooError(
                    f"{self.dataset} takes {wanted} per example; example {i} is {example!r:.200}."
                )
            checked.append(sentences)
        return checked

    def check_labels(self, labels):
        """`labels` as an array (int64 class ids, or float32 scores for STS-B); raises on a label outside
        the task's classes (such as the -1 of GLUE's unlabelled test splits)."""
        labels = np.asarray(labels)
        if self.is_regression:
            low, high = STSB_RANGE
            bad = ~((labels >= low) & (labels <= high))
            allowed = f"similarity scores in [{low:g}, {high:g}]"
        else:
            bad = ~np.isin(labels, np.arange(self.num_classes))
            allowed = f"class ids 0..{self.num_classes - 1}"
        if bad.any():
            i = int(np.argmax(bad))
            unlabelled = labels[i] == -1
            hint = " GLUE's test splits have no labels (-1): evaluate on validation." if unlabelled else ""
            raise OdezooError(
                f"{self.dataset} takes {allowed}; label {i} is {labels[i].item()!r} ({int(bad.sum())} of "
                f"{len(labels)} outside).{hint}"
            )
        return labels.astype("float32" if self.is_regression else "int64")


GLUE_TASKS = {
    task.name: task
    for task in (
        GlueTask("cola", ("sentence",), 2, ("matthews_corr",), label_names=("unacceptable", "acceptable")),
        GlueTask("sst2", ("sentence",), 2, label_names=("negative", "positive")),
        GlueTask(
            "mrpc",
            ("sentence1", "sentence2"),
            2,
            ("f1", "accuracy"),
            label_names=("not_equivalent", "equivalent"),
        ),
        GlueTask(
            "qqp",
            ("question1", "question2"),
            2,
            ("f1", "accuracy"),
            label_names=("not_duplicate", "duplicate"),
        ),
        GlueTask("stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman")),
        GlueTask(
            "mnli",
            ("premise", "hypothesis"),
            3,
            validation=MNLI_VALIDATION,
            label_names=("entailment", "neutral", "contradiction"),
        ),
        GlueTask("qnli", ("question", "sentence"), 2, label_names=("entailment", "not_entailment")),
        GlueTask("rte", ("sentence1", "sentence2"), 2, label_names=("entailment", "not_entailment")),
        GlueTask("wnli", ("sentence1", "sentence2"), 2, label_names=("not_entailment", "entailment")),
    )
}


class DictionaryTagsTask(GlueTask):
    """The subject tag (`SUBJECT_TAGS`) of an English dictionary entry, offline: splits train, valid
    and test of `odezoo.data.text.dictionary_tags`, whose `data_dir` is a Ding de-en file."""

    @property
    def dataset(self):
        return self.name

    def rows(self, split, *, limit=0, data_dir=None, download=True):
        from odezoo.data.text import SPLITS, dictionary_tags

        if split not in SPLITS:
            raise OdezooError(f"{self.dataset} has splits {list(SPLITS)}. Received: split={split!r}")
        texts, labels = dictionary_tags(data_dir)[split]
        return [(text,) for text in texts[: limit or None]], labels[: limit or None]


DICTIONARY_TAGS = DictionaryTagsTask(
    "dictionary_tags",
    ("text",),
    len(SUBJECT_TAGS),
    ("accuracy", "macro_f1"),
    validation=("test", "valid"),
    label_names=SUBJECT_TAGS,
)


def glue_task(name):
    """The `GlueTask` of `name` (`"cola"` or `"glue/cola"`, or `"dictionary_tags"`); raises naming the
    close ones."""
    if name == DICTIONARY_TAGS.dataset:
        return DICTIONARY_TAGS
    key = name.removeprefix("glue/") if isinstance(name, str) else name
    if key not in GLUE_TASKS:
        close = difflib.get_close_matches(str(key).lower(), GLUE_TASKS, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(f'glue/{c}' for c in close)}?" if close else ""
        raise OdezooError(
            f"Unknown GLUE task {name!r}.{hint} GLUE has {', '.join(f'glue/{t}' for t in GLUE_TASKS)}; "
            f"odezoo also has {DICTIONARY_TAGS.dataset}."
        )
    return GLUE_TASKS[key]


def glue_examples(task, split, *, limit=0, data_dir=None, download=True):
    """The first `limit` (0: all) examples of a split of a task (`GlueTask.rows`): `(list of sentence
    tuples in the order of `task.keys`, labels checked by `check_labels`)`."""
    task = glue_task(task) if isinstance(task, str) else task
    examples, labels = task.rows(split, limit=limit, data_dir=data_dir, download=download)
    if not examples:
        raise OdezooError(f"The {task.dataset} {split} split holds no examples: check the data (--data-dir).")
    return examples, task.check_labels(labels)


def glue_metrics(task, labels, outputs):
    """The task's metrics of model `outputs` against `labels`, as floats.

    `outputs`: `(n, num_classes)` logits (arg-max), `(n, 1)` or `(n,)` for one logit of a binary
    task (class 1 where > 0) or STS-B's predicted scores. Matthews correlation (CoLA), F1 of class 1 and
    accuracy (MRPC, QQP), Pearson and Spearman correlation (STS-B), accuracy and macro-averaged F1
    (dictionary tags), accuracy otherwise.
    """
    from scipy.stats import pearsonr, spearmanr

    try:
        from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
    except ImportError:
        raise OdezooError(
            "GLUE metrics need scikit-learn (the `text` extra): pip install 'odezoo[text]'."
        ) from None

    task = glue_task(task) if isinstance(task, str) else task
    outputs = np.asarray(outputs, "float64")
    if task.is_regression:
        scores = outputs.reshape(len(labels))
        return {
            "pearson": float(pearsonr(scores, labels).statistic),
            "spearman": float(spearmanr(scores, labels).statistic),
        }
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        predictions = (outputs.reshape(len(labels)) > 0).astype("int64")
    else:
        predictions = outputs.argmax(-1)
    measures = {
        "accuracy": lambda: accuracy_score(labels, predictions),
        "f1": lambda: f1_score(labels, predictions, zero_division=0.0),
        "macro_f1": lambda: f1_score(labels, predictions, average="macro", zero_division=0.0),
        "matthews_corr": lambda: matthews_corrcoef(labels, predictions),
    }
    return {name: float(measures[name]()) for name in task.metrics}
