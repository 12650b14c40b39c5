from odezoo.data.images import DATASETS as DATASETS
from odezoo.data.images import image_dataset as image_dataset
from odezoo.data.images import load_split as load_split
