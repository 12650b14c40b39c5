"""The Hub path for real: `hf://` downloads and `push` uploads against a Hub stand-in on 127.0.0.1."""

import hashlib
import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from hub_server import HubServer, git_blob_id

import odezoo
from odezoo import LMResNet, OdezooError
from odezoo.cli import main
from odezoo.hub import hub_snapshot, push_folder

TINY = {"depth": 8, "num_classes": 4, "image_shape": (8, 8, 1), "width": 2}
X = np.random.default_rng(1).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
REPO = "odezoo-test/tiny"
FILES = ["README.md", "config.json", "metadata.json", "model.weights.h5"]


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """A running `HubServer` that huggingface_hub talks to, with an empty cache under tmp_path."""
    from huggingface_hub import constants

    server = HubServer()
    template = server.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_loopback_token")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """Two tiny preset folders with different weights, each with the outputs of the model saved in it."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("presets")
    made = []
    for name in ("tiny", "other"):
        model = LMResNet(**TINY)
        made.append((model.save_pretrained(root / name), outputs(model)))
    return made


@pytest.fixture
def folder(presets):
    return presets[0][0]


def outputs(model):
    return np.asarray(model(X))


def snapshot_files(cache, repo_id=REPO):
    """`{commit: {name: bytes}}` of the cache's snapshots of `repo_id`."""
    snapshots = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return {}
    return {s.name: {f.name: f.read_bytes() for f in s.iterdir()} for s in snapshots.iterdir()}


def test_first_download_fills_the_cache(hub, presets, tmp_path):
    (folder, expected), _ = presets
    commit = hub.commit(REPO, folder)
    model = odezoo.load(f"hf://{REPO}")
    np.testing.assert_array_equal(outputs(model), expected)
    cache = tmp_path / "hf"
    assert snapshot_files(cache) == {commit: {p.name: p.read_bytes() for p in folder.iterdir()}}
    repo = cache / "models--odezoo-test--tiny"
    assert (repo / "refs" / "main").read_text() == commit
    for blob in (repo / "blobs").iterdir():  # every blob is whole: named by the ETag the server sent
        data = blob.read_bytes()
        assert blob.name in (hashlib.sha256(data).hexdigest(), git_blob_id(data))
    assert sorted(p for m, p in hub.requests if m == "GET" and "/resolve/" in p) == [
        f"/{REPO}/resolve/{commit}/{name}" for name in FILES
    ]
    assert hub.unrouted == []


def test_second_load_comes_from_the_cache(hub, folder, monkeypatch):
    from huggingface_hub import constants

    hub.commit(REPO, folder)
    expected = outputs(odezoo.load(f"hf://{REPO}"))
    hub.stop()  # the Hub is gone: the cached snapshot is used, online or offline
    np.testing.assert_array_equal(outputs(odezoo.load(f"hf://{REPO}")), expected)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    np.testing.assert_array_equal(outputs(LMResNet.from_pretrained(f"hf://{REPO}")), expected)
    with pytest.raises(OdezooError, match="HF_HUB_OFFLINE is set and the Hugging Face cache .* has no copy"):
        odezoo.load("hf://odezoo-test/other")


def test_pinned_revision_gets_its_own_weights(hub, presets, tmp_path):
    (folder, original), (other, changed) = presets
    first = hub.commit(REPO, folder)
    hub.commit(REPO, other, branch="v2")
    latest = hub.commit(REPO, other)  # main moves on: its first commit stays reachable by id
    assert not np.allclose(original, changed)
    np.testing.assert_array_equal(outputs(LMResNet.from_pretrained(f"hf://{REPO}", revision="v2")), changed)
    np.testing.assert_array_equal(outputs(odezoo.load(f"hf://{REPO}", revision=first)), original)
    np.testing.assert_array_equal(outputs(odezoo.load(f"hf://{REPO}")), changed)
    assert set(snapshot_files(tmp_path / "hf")) == {first, latest, hub.repos[REPO]["refs"]["v2"]}
    with pytest.raises(OdezooError, match=f"Hub repository '{REPO}' has no revision 'v3'; pass a branch"):
        odezoo.load(f"hf://{REPO}", revision="v3")


def test_cut_download_leaves_no_corrupt_file_and_recovers(hub, presets, tmp_path, monkeypatch):
    from huggingface_hub import constants, file_download

    (folder, expected), _ = presets
    waits = []
    # huggingface_hub pauses 1 s before each of its (bounded) retries of a broken download: count them instead
    monkeypatch.setattr(file_download, "time", SimpleNamespace(sleep=waits.append))
    commit = hub.commit(REPO, folder)
    hub.fault = ("cut", "model.weights.h5")
    with pytest.raises(OdezooError) as caught:
        odezoo.load(f"hf://{REPO}")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"Download of '{REPO}' from the Hub ({hub.endpoint}) was interrupted")
    assert hub.cut_sent and 1 <= len(waits) <= 10
    cache = tmp_path / "hf"
    weights = (folder / "model.weights.h5").read_bytes()
    for files in snapshot_files(cache).values():  # whatever is in a snapshot is whole
        assert "model.weights.h5" not in files
        assert all(data == (folder / name).read_bytes() for name, data in files.items())
    blobs = list((cache / "models--odezoo-test--tiny" / "blobs").iterdir())
    assert not [b for b in blobs if b.read_bytes() != weights and len(b.read_bytes()) == len(weights) // 2]
    assert not [b for b in blobs if b.name.endswith(".incomplete")]

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(
        OdezooError, match=r"HF_HUB_OFFLINE is set and the Hugging Face cache \(.*\) has only part of it"
    ):
        odezoo.load(f"hf://{REPO}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub.fault = None
    model = odezoo.load(f"hf://{REPO}")
    np.testing.assert_array_equal(outputs(model), expected)
    assert snapshot_files(cache)[commit]["model.weights.h5"] == weights


@pytest.mark.parametrize(
    "fault, message",
    [
        ("404", f"No Hub repository '{REPO}': check the name, or log in"),
        (
            "500",
            f"Cannot load '{REPO}': the Hub (ENDPOINT) answered HTTP 500 (Internal Server Error) and the",
        ),
        (
            "garbage",
            f"Cannot load '{REPO}': ENDPOINT did not answer like a Hugging Face Hub (its API sent '<!doctype",
        ),
    ],
    ids=["404", "500", "garbage"],
)
def test_hub_errors_are_one_clear_message(hub, fault, message):
    hub.commit(REPO, {"config.json": b"{}"})  # never reached: the repo-info call fails first
    hub.fault = fault
    with pytest.raises(OdezooError) as caught:
        odezoo.load(f"hf://{REPO}")
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message.replace("ENDPOINT", hub.endpoint)), text
    assert not [p for m, p in hub.requests if "/resolve/" in p]


def test_missing_repo_without_fault(hub):
    with pytest.raises(OdezooError, match="No Hub repository 'odezoo-test/none': check the name"):
        hub_snapshot("odezoo-test/none")


def test_push_uploads_the_folder(hub, presets, capsys):
    (folder, expected), _ = presets
    url = push_folder(folder, "me/tiny")
    commit = hub.repos["me/tiny"]["refs"]["main"]
    assert url == f"{hub.endpoint}/me/tiny/commit/{commit}"
    files = hub.repos["me/tiny"]["commits"][commit]
    assert {name: files[name] for name in FILES} == {name: (folder / name).read_bytes() for name in FILES}
    assert hub.authorization["POST", "/api/models/me/tiny/commit/main"] == "Bearer hf_loopback_token"
    assert hub.repos["me/tiny"]["private"] is False

    # `odezoo push` of the Hub copy to a new private repo: download, then upload, both through the server
    assert main(["push", "hf://me/tiny", "me/copy", "--private"]) == 0
    result = json.loads(capsys.readouterr().out)
    copy = hub.repos["me/copy"]
    assert result == {"commit_url": f"{hub.endpoint}/me/copy/commit/{copy['refs']['main']}"}
    assert copy["private"] is True
    assert {n: copy["commits"][copy["refs"]["main"]][n] for n in FILES} == {n: files[n] for n in FILES}
    np.testing.assert_array_equal(outputs(odezoo.load("hf://me/copy")), expected)
    assert hub.unrouted == []


def test_push_without_a_network_is_one_line(hub, folder, capsys):
    """The Hub unreachable (nothing listens on the port any more): one line, exit status 2."""
    hub.stop()
    assert main(["push", str(folder), "me/copy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Could not upload to Hub repository 'me/copy'" in err[0]
