"""The Hugging Face Hub: preset folders downloaded through its cache and uploaded.

`HF_HUB_OFFLINE`, `HF_ENDPOINT` and `HF_HUB_CACHE` are honoured; every failure becomes one
`OdezooError` that says what to do.
"""

import os
from pathlib import Path

from odezoo._version import __version__
from odezoo.errors import OdezooError


def hub_snapshot(repo_id, revision=None) -> Path:
    """Downloads (or finds in the cache) the Hub repo `repo_id` and returns its folder."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = repr(repo_id) + (f" at revision {revision!r}" if revision else "")
    try:
        return Path(
            snapshot_download(repo_id, revision=revision, library_name="odezoo", library_version=__version__)
        )
    except LocalEntryNotFoundError:
        reason = (
            "HF_HUB_OFFLINE is set"
            if constants.is_offline_mode()
            else f"the Hub ({constants.ENDPOINT}) could not be reached"
        )
        raise OdezooError(
            f"Cannot load {where}: {reason} and the Hugging Face cache ({constants.HF_HUB_CACHE}) has "
            "no copy. Connect and unset HF_HUB_OFFLINE, or set HF_ENDPOINT to a reachable mirror, or "
            f"run `hf download {repo_id}` on a connected machine and copy its cache here (or point "
            "HF_HUB_CACHE at it), or pass a local preset folder."
        ) from None
    except RevisionNotFoundError:
        raise OdezooError(
            f"Hub repository {repo_id!r} has no revision {revision!r}; pass a branch, tag or commit it has."
        ) from None
    except RepositoryNotFoundError:
        raise OdezooError(
            f"No Hub repository {repo_id!r}: check the name, or log in (`hf auth login`) if it is private."
        ) from None
    except HfHubHTTPError as error:
        raise OdezooError(f"The Hub refused {where}: {error}".splitlines()[0]) from None


def push_folder(folder, repo_id, *, private=False) -> str:
    """Uploads a preset folder to the Hub repo `repo_id` (created if needed); returns the commit URL."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=os.fspath(folder), commit_message="Upload odezoo preset"
        )
    except (HfHubHTTPError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OdezooError(
            f"Could not upload to Hub repository {repo_id!r} ({first}). Log in with `hf auth login` "
            "(or set HF_TOKEN), unset HF_HUB_OFFLINE, and check the network or HF_ENDPOINT."
        ) from None
    return str(commit.commit_url)
