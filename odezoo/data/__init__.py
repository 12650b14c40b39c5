from odezoo.data.images import DATASETS as DATASETS
from odezoo.data.images import image_dataset as image_dataset
from odezoo.data.images import load_split as load_split
from odezoo.data.text import dictionary_corpus as dictionary_corpus
from odezoo.data.text import dictionary_pairs as dictionary_pairs
from odezoo.data.text import dictionary_splits as dictionary_splits
from odezoo.data.text import iwslt14_files as iwslt14_files
from odezoo.data.text import wmt14_dataset as wmt14_dataset
