"""Saving a GradInit initialization as a self-contained checkpoint and sharing it on the Hugging Face Hub."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from huggingface_hub import HfApi

from .layer_norm_placement import is_pre_ln
from .model_card import build_model_card, hub_base_model, model_kind
from .result import GradInitResult

logger = logging.getLogger(__name__)

PLOT_NAME = "scales.png"


class GradInitPushError(RuntimeError):
    """A push to the Hub failed; the local checkpoint is complete and can be pushed again."""


def save_initialization(
    model,
    result: GradInitResult,
    save_directory: str,
    processing_class=None,
    *,
    model_name: str | None = None,
    datasets: list[str] | None = None,
    languages: list[str] | None = None,
) -> str:
    """Write the initialized model (safetensors, config, generation config), its processing class,
    `scales.json`, a plot of the scales and a model card into `save_directory`.

    The folder is written beside `save_directory` first and then put in its place whole: an older folder there is
    replaced (with a warning), never mixed with the new files, and a failure leaves it as it was.
    """
    save_directory = os.path.normpath(save_directory)
    parent = os.path.dirname(os.path.abspath(save_directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(save_directory)}-", dir=parent)
    # mkdtemp makes a private (0700) folder; the checkpoint gets the mode any other new folder gets.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        _write_initialization(
            model, result, staging, processing_class, save_directory, model_name, datasets, languages
        )
        if os.path.exists(save_directory):
            logger.warning("Replacing %s, written by an earlier GradInit search.", save_directory)
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(save_directory)}-old-", dir=parent)
            os.replace(save_directory, os.path.join(old, "previous"))
            os.replace(staging, save_directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, save_directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return save_directory


def _write_initialization(
    model, result, directory, processing_class, final_directory, model_name, datasets, languages
):
    model.save_pretrained(directory)
    if processing_class is not None:
        processing_class.save_pretrained(directory)
    result.save(directory)
    try:
        from .scale_report import plot_scales

        plot_scales(result, os.path.join(directory, PLOT_NAME))
    except ImportError:
        logger.warning("matplotlib is not installed: no %s in %s (pip install matplotlib).", PLOT_NAME, directory)
    card = build_model_card(
        model_name=model_name or os.path.basename(final_directory),
        # The snippet loads the Hub repo once pushed, else the folder the checkpoint is written to.
        load_from=model_name or final_directory,
        model_type=model_kind(model.config),
        base_model=hub_base_model(model),
        datasets=datasets,
        languages=languages,
        result=result,
        initialization_only=True,
        post_ln=not is_pre_ln(model),
    )
    card.save(os.path.join(directory, "README.md"))


def _cause(e: Exception) -> str:
    """What to fix first: offline mode when it is on (the Hub client then refuses every request), else the token."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set, so the Hub cannot be reached: unset it (and check your network) to push"
    return "Check your token (`hf auth login` or HF_TOKEN) and the repo id"


def check_hub_access(repo_id: str, private: bool | None = None, token: str | None = None) -> str:
    """Create (or find) the repo before any work, so that a missing token or a bad repo id fails early.
    Returns the repo id as the Hub names it."""
    try:
        url = HfApi(token=token).create_repo(repo_id, private=private, exist_ok=True)
    except Exception as e:  # the Hub client raises many kinds: HTTP errors, missing token, connection errors
        raise GradInitPushError(
            f"Cannot create or reach the Hub repo {repo_id!r}. {_cause(e)}, before the GradInit search runs. "
            f"({type(e).__name__}: {e})"
        ) from e
    return url.repo_id


def push_initialization_to_hub(
    save_directory: str,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload GradInit initialization",
) -> str:
    """Upload a directory written by `save_initialization` to `repo_id` and return the commit URL.

    On failure the directory is left as it is and `GradInitPushError` says how to retry the push alone.
    """
    required = ("config.json", "scales.json")
    missing = [f for f in required if not os.path.isfile(os.path.join(save_directory, f))]
    if missing:
        raise FileNotFoundError(f"{save_directory} is not a GradInit checkpoint: {', '.join(missing)} missing.")
    retry = (
        f"The local checkpoint in {save_directory} is complete. Retry the push alone with "
        f"`hf-gradinit push {save_directory} --repo_id {repo_id}` or "
        f"`hf_gradinit.push_initialization_to_hub({save_directory!r}, {repo_id!r})`."
    )
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        commit = api.upload_folder(repo_id=repo_id, folder_path=save_directory, commit_message=commit_message)
    except Exception as e:  # HTTP errors, connection errors, a missing token: the local copy stays, say how to retry
        raise GradInitPushError(
            f"Pushing the GradInit initialization to {repo_id!r} failed. {_cause(e)}. "
            f"({type(e).__name__}: {e})\n{retry}"
        ) from e
    logger.info("GradInit initialization pushed to %s", commit.commit_url)
    return commit.commit_url
