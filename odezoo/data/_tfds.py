"""The TensorFlow Datasets reader every data module shares, with its one-line failure message."""

from odezoo.errors import OdezooError


def tfds_split(name, split, data_dir, download, *, supervised=True):
    """Returns `(tf.data.Dataset of the builder's supervised pairs, or of its feature dicts where
    `supervised` is False, number of examples)`; raises one `OdezooError` line saying how to prepare
    the data when TFDS cannot load it."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
        ds = builder.as_dataset(split=split, as_supervised=supervised)
        return ds, int(ds.cardinality())
    except Exception as error:  # TFDS raises assorted types for missing or unreachable data
        first = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__
        raise OdezooError(
            f"Could not load {name} ({split}) through TensorFlow Datasets: {first}. On a connected "
            f"machine run `tfds build {name}` (or let odezoo download it), then pass its data folder "
            "with --data-dir / data_dir= if it is not ~/tensorflow_datasets."
        ) from None
