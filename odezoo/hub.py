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
    import json
    from http import HTTPStatus

    import httpx2
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = repr(repo_id) + (f" at revision {revision!r}" if revision else "")
    hub = f"the Hub ({constants.ENDPOINT})"
    try:
        return Path(
            snapshot_download(repo_id, revision=revision, library_name="odezoo", library_version=__version__)
        )
    except LocalEntryNotFoundError as error:
        cause = error.__cause__
        copy = "only part of it" if isinstance(error, IncompleteSnapshotError) else "no copy"
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            status = cause.response.status_code
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "an unknown status"
            raise OdezooError(
                f"Cannot load {where}: {hub} answered HTTP {status} ({phrase}) and the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}) has {copy}. Try again later, or set HF_ENDPOINT to a working "
                "mirror, or pass a local preset folder."
            ) from None
        reason = "HF_HUB_OFFLINE is set" if constants.is_offline_mode() else f"{hub} could not be reached"
        raise OdezooError(
            f"Cannot load {where}: {reason} and the Hugging Face cache ({constants.HF_HUB_CACHE}) has "
            f"{copy}. Connect and unset HF_HUB_OFFLINE, or set HF_ENDPOINT to a reachable mirror, or "
            f"run `hf download {repo_id}` on a connected machine and copy its cache here (or point "
            "HF_HUB_CACHE at it), or pass a local preset folder."
        ) from None
    except HFValidationError:
        raise OdezooError(
            f"{repo_id!r} is not a Hub repository id: write hf://<org>/<name> (letters, digits, '-', '_', "
            "'.'), e.g. hf://odezoo/lm_resnet20_fashion_mnist."
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
    except json.JSONDecodeError as error:
        raise OdezooError(
            f"Cannot load {where}: {constants.ENDPOINT} did not answer like a Hugging Face Hub (its API sent "
            f"{error.doc[:40]!r} instead of JSON). Check HF_ENDPOINT (unset it to use huggingface.co) and "
            "any proxy or captive portal in the way."
        ) from None
    except ValueError as error:  # a file name that would leave the cache folder (`..`, an absolute path)
        raise OdezooError(f"Cannot download {where}: {error}".splitlines()[0]) from None
    except (httpx2.TransportError, OSError) as error:
        what = "was interrupted" if isinstance(error, httpx2.TransportError) else "failed"
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OdezooError(
            f"Download of {where} from {hub} {what} ({detail}). The cache keeps only whole files: run the "
            "same call again to finish it, or check the network, HF_ENDPOINT and HF_HUB_CACHE."
        ) from None


def push_folder(folder, repo_id, *, private=False) -> str:
    """Uploads a preset folder to the Hub repo `repo_id` (created if needed); returns the commit URL."""
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=os.fspath(folder), commit_message="Upload odezoo preset"
        )
    except HFValidationError:
        raise OdezooError(
            f"{repo_id!r} is not a Hub repository id: write <org>/<name> (letters, digits, '-', '_', '.'), "
            "e.g. me/lm_resnet20_fashion_mnist."
        ) from None
    except (HfHubHTTPError, OSError, httpx2.TransportError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise OdezooError(
            f"Could not upload to Hub repository {repo_id!r} ({first}). Log in with `hf auth login` "
            "(or set HF_TOKEN), unset HF_HUB_OFFLINE, and check the network or HF_ENDPOINT."
        ) from None
    return str(commit.commit_url)
