"""`GradInitTrainer`: a `Seq2SeqTrainer` that runs the GradInit scale search before training."""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, TrainerCallback
from transformers.trainer_pt_utils import LabelSmoother
from transformers.trainer_utils import get_last_checkpoint, set_seed

from .arguments import MIN_SEARCH_BATCH_ROWS, GradInitArguments
from .config import WITHOUT_WARMUP_WARNING, GradInitConfig
from .decoder_inputs import label_safe_collator, with_decoder_inputs
from .distributed import check_parameters_match, sync_parameters
from .hub import GradInitPushError, check_hub_access, push_initialization_to_hub, save_initialization
from .layer_norm_placement import is_pre_ln
from .model_card import build_model_card, hub_base_model, model_kind
from .random_state import restored_random_state
from .result import GradInitResult
from .search import GradInitSearch, gradinit, is_gradinit_initialized
from .stability_callback import StabilityCallback
from .token_batches import TokenBudgetBatchSampler, example_sizes, token_budget_dataloader
from .token_nll import TokenNll
from .training_data import check_batch, check_columns

logger = logging.getLogger(__name__)

GRADINIT_DIR = "gradinit"


def _loss_ignores_num_items(model) -> bool:
    """Whether `model` takes **kwargs but computes its own mean loss instead of using `num_items_in_batch`."""
    if hasattr(model, "accepts_loss_kwargs"):
        return False
    forward = type(model).forward
    takes_kwargs = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in inspect.signature(forward).parameters.values())
    try:
        source = inspect.getsource(forward)
    except (OSError, TypeError):
        return False
    return takes_kwargs and "loss_function" not in source and "num_items_in_batch" not in source


def _refuse_sharded(model) -> None:
    """The search needs every full tensor on every process; a ZeRO-3 or meta-device model does not have them."""
    for name, p in model.named_parameters():
        if p.is_meta or hasattr(p, "ds_id") or (p.numel() == 0 and p.requires_grad):
            raise ValueError(
                f"Parameter {name} is sharded or not materialised (DeepSpeed ZeRO-3 or a meta-device load), so "
                "GradInit cannot compute its scale. Run the search without sharding first (e.g. `GradInitTrainer` "
                "with gradinit=True on one process, or DDP), save output_dir/gradinit/, then train that "
                "checkpoint with sharding and gradinit=False."
            )


def _refuse_single_stack(model) -> None:
    """GradInitTrainer is a Seq2SeqTrainer: its collator, search batches and loss expect an encoder–decoder model."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return
    generates = callable(getattr(model, "can_generate", None)) and model.can_generate()
    kind = "decoder-only" if getattr(config, "is_decoder", False) or generates else "encoder-only"
    raise ValueError(
        f"GradInitTrainer trains encoder-decoder (seq2seq) models; {type(model).__name__} is {kind} "
        "(config.is_encoder_decoder is False). For other models run the search alone, "
        "`gradinit(model, batches, GradInitArguments(gradinit_eta=2 * lr))`, then train with transformers.Trainer."
    )


def _refuse_unjoined_processes(num_processes: int) -> None:
    """Launched as several processes that the Trainer does not join (torchrun on CPU without use_cpu=True): each would
    run the whole job alone and write the same output_dir. Refused before any work."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and num_processes == 1:
        raise RuntimeError(
            f"Launched as {world} processes (WORLD_SIZE={world}), but the Trainer runs each of them alone, so every "
            "process would search, train and write output_dir by itself. On CPU pass --use_cpu (use_cpu=True) so "
            "that the processes train together; on GPUs launch one process per GPU."
        )


def _is_dataset(obj) -> bool:
    # A datasets.Dataset, a torch Dataset or a list of examples; a collator is a callable.
    return obj is not None and not callable(obj) and hasattr(obj, "__getitem__") and hasattr(obj, "__len__")


def _dataset_first(pargs: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """`GradInitTrainer(model, args, train_dataset[, eval_dataset], ...)`: a dataset in the third position is the
    training data (the Trainer's own third parameter is `data_collator`, which is callable and stays positional)."""
    if not pargs or not _is_dataset(pargs[0]):
        return pargs, kwargs
    if "train_dataset" in kwargs:
        raise TypeError("GradInitTrainer got a dataset as its third argument and train_dataset=... as well.")
    names = ["train_dataset"] + (["eval_dataset"] if len(pargs) > 1 and _is_dataset(pargs[1]) else [])
    if len(pargs) > len(names):
        raise TypeError(
            "After GradInitTrainer(model, args, train_dataset[, eval_dataset]) pass the other arguments by keyword "
            "(data_collator=..., processing_class=...)."
        )
    for name, value in zip(names, pargs):
        if name in kwargs:
            raise TypeError(f"GradInitTrainer got {name} both positionally and by keyword.")
        kwargs[name] = value
    return (), kwargs


class _KeepSearchLogs(TrainerCallback):
    """`Trainer.train()` starts from a fresh `TrainerState`; put the search's log records back at its head."""

    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        if self.records and not any("gradinit_loss" in r for r in state.log_history):
            state.log_history[:0] = self.records


class GradInitTrainer(Seq2SeqTrainer):
    """A [`~transformers.Seq2SeqTrainer`] whose `train()` first runs the GradInit scale search.

    `GradInitTrainer(model, args, train_dataset)` works as written: a dataset (anything indexable with a length
    that is not callable) in the third position is the training data, and a fourth dataset the evaluation data;
    pass the rest by keyword. A callable in the third position is a `data_collator`, as in the `Trainer`. Without
    a collator and with a `processing_class`, batches are padded by
    `DataCollatorForSeq2Seq(processing_class, model=model, label_pad_token_id=-100)`.

    The search draws its batches from the trainer's own train dataloader (collator, sampler and Accelerate
    sharding apply, with `gradinit_batch_size` rows per device), uses the trainer's loss (label smoothing
    included), and writes the initialized model and `scales.json` to `output_dir/gradinit/`. Training then
    proceeds as usual; `GradInitConfig` turns warmup off by default.

    The search is skipped when `args.gradinit` is False, when training resumes from a checkpoint, and when the
    model was already initialized (its config records a search, e.g. a checkpoint saved after one).
    """

    def __init__(self, model=None, args: GradInitConfig | None = None, *pargs, **kwargs):
        if args is None:
            args = GradInitConfig(output_dir="trainer_output")
        if not isinstance(args, GradInitArguments):
            raise TypeError(
                f"GradInitTrainer needs args=GradInitConfig(...), got {type(args).__name__}: it has no gradinit_* "
                "fields."
            )
        _refuse_single_stack(model)
        pargs, kwargs = _dataset_first(pargs, kwargs)
        processing_class = kwargs.get("processing_class", pargs[3] if len(pargs) > 3 else None)
        if not pargs and kwargs.get("data_collator") is None and processing_class is not None and model is not None:
            # The Trainer's default would pad inputs but not labels; seq2seq rows need both (labels with −100).
            kwargs["data_collator"] = DataCollatorForSeq2Seq(processing_class, model=model, label_pad_token_id=-100)
        # Positionally, model_init follows data_collator, train_dataset, eval_dataset and processing_class.
        model_init = kwargs.get("model_init", pargs[4] if len(pargs) > 4 else None)
        if args.gradinit and model_init is not None:
            raise ValueError(
                "GradInitTrainer does not support model_init with gradinit=True: train() would re-create the model "
                "after the search. Pass model=... instead, or set gradinit=False."
            )
        super().__init__(model, args, *pargs, **kwargs)
        _refuse_unjoined_processes(self.accelerator.num_processes)
        if args.gradinit and model is not None and is_pre_ln(model):
            logger.warning(
                "%s normalizes before its sublayers (Pre-LN: a LayerNorm after its last layer). GradInit's claim, "
                "training without warmup, is for Post-LN Transformers, which need warmup; Pre-LN ones usually train "
                "without it already, and the package has not measured GradInit on them. The search runs as asked; "
                "the model card will not be tagged post-ln.",
                type(model).__name__,
            )
        # DataCollatorForSeq2Seq(tokenizer, model=fsmt) would overwrite the labels' −100 with pad ids.
        self.data_collator = label_safe_collator(self.data_collator)
        if _loss_ignores_num_items(self.accelerator.unwrap_model(self.model)) or not self.model_accepts_loss_kwargs:
            # BART, Marian and FSMT take **kwargs but average their loss over their own batch: the processes' means
            # would be averaged with equal weights, and the Trainer would multiply them by the process count. The
            # Trainer's own label-smoothed cross-entropy (epsilon 0 is plain cross-entropy) divides by the token
            # count of all processes' batches instead, so that N processes train as one on the union of their
            # batches, however many tokens each holds (token budgets).
            self.model_accepts_loss_kwargs = False
            if self.compute_loss_func is None:
                self.compute_loss_func = LabelSmoother(epsilon=self.args.label_smoothing_factor)
        self.gradinit_result: GradInitResult | None = None
        # Extra model-card fields for the initialized checkpoint, e.g. {"datasets": [...], "languages": [...]}.
        self.gradinit_card_data: dict[str, Any] = {}
        if self.args.gradinit and self.args.gradinit_push_to_hub and self.is_world_process_zero():
            # As Trainer does for push_to_hub: a Hub problem surfaces now, before any work.
            check_hub_access(self.args.gradinit_repo_id, private=self.args.hub_private_repo, token=self.args.hub_token)
        # Where the trainer's own messages go (None: under the progress bars), and whether training without warmup
        # gets its warning: `compare` sends the messages to each arm's log and is the comparison the warning advises.
        self.show_message: Callable[[str], None] | None = None
        self.warn_without_warmup = True
        self._search_logs = _KeepSearchLogs()
        self.add_callback(self._search_logs)
        self._lengths: tuple[Any, Any] | None = None  # (dataset, its example lengths)
        self._rows_trained = 0  # by this call of train(): what train_samples_per_second counts with max_tokens
        self._token_nll: TokenNll | None = None  # set while an evaluation runs
        if args.stability_monitor and self.eval_dataset is not None:
            self.add_callback(StabilityCallback(self, max_rows=args.stability_monitor_rows))

    def compute_loss(self, model, inputs, *args, **kwargs):
        if self._token_nll is not None:
            # The Trainer takes the labels out of the batch when it computes the loss itself.
            self._token_nll.expect(inputs.get("labels"))
        # Labels-only batches: decoder inputs from the labels, also for FSMT (which would read the source ids).
        return super().compute_loss(model, with_decoder_inputs(model, inputs), *args, **kwargs)

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        """The Trainer's loop, plus `{metric_key_prefix}_nll`: the plain cross-entropy per target token (fairseq's
        `nll_loss`) beside the Trainer's label-smoothed, per-batch `eval_loss`."""
        with TokenNll(self.accelerator.unwrap_model(self.model)) as nll:
            self._token_nll = nll
            try:
                output = super().evaluation_loop(
                    dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
                )
            finally:
                self._token_nll = None
        total, count = self.accelerator.reduce(nll.totals().to(self.args.device), reduction="sum").tolist()
        if count:
            output.metrics[f"{metric_key_prefix}_nll"] = total / count
        return output

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, **kwargs):
        if self.train_dataset is not None:
            check_columns(self.train_dataset)
        self._check_token_budgets()
        if self.train_dataset is not None:
            # The first rows as the collator batches them: a collator that drops or never makes `labels` fails here.
            check_batch(self._first_training_batch())
        if resume_from_checkpoint:
            # The Trainer loads only the weights of the checkpoint into the model: take its GradInit record too,
            # so that later checkpoints, the final model and its card still say it was initialized.
            self._carry_gradinit_record(resume_from_checkpoint)
        if self.args.gradinit:
            if resume_from_checkpoint:
                self._show("GradInit: resuming from a checkpoint, so the search is skipped.")
            elif self.args.gradinit_iters == 0:
                self._show("GradInit: gradinit_iters=0, so no search runs.")
            elif is_gradinit_initialized(self.model):
                self._show(
                    "GradInit: the model is already initialized (model.config.gradinit): the search is skipped."
                )
            else:
                self.gradinit()
        self._rows_trained = 0
        if self.args.trains_without_warmup and self.warn_without_warmup and self.is_world_process_zero():
            logger.warning(WITHOUT_WARMUP_WARNING)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, trial=trial, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        batch_rows = inputs.get("labels", inputs.get("input_ids"))
        self._rows_trained += batch_rows.shape[0] if batch_rows is not None else 0
        return super().training_step(model, inputs, num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "train_samples_per_second" in logs and self.args.max_tokens is not None and logs.get("train_runtime"):
            # The Trainer counts per_device_train_batch_size rows a step; a token-budget batch holds as many rows as
            # fit its budget. The rows this call trained, on every process, over its runtime.
            rows = torch.tensor(float(self._rows_trained), device=self.args.device)
            rows = self.accelerator.reduce(rows, reduction="sum").item()
            logs["train_samples_per_second"] = round(rows / logs["train_runtime"], 3)
        super().log(logs, start_time)

    def get_train_dataloader(self):
        """Row batches as the Trainer makes them, or token-budget batches when `args.max_tokens` is set."""
        if self.args.max_tokens is None:
            return super().get_train_dataloader()
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        return token_budget_dataloader(self, self.args.max_tokens, what="max_tokens")

    def train_example_sizes(self):
        """One (source length, labels length) row per training example, computed once per dataset."""
        if self._lengths is None or self._lengths[0] is not self.train_dataset:
            self._lengths = (self.train_dataset, example_sizes(self.train_dataset))
        return self._lengths[1]

    def _first_training_batch(self) -> dict[str, Any]:
        """The collator's batch of the training data's first rows, with the columns the training dataloader drops
        dropped; no dataloader is built, so no sampler draws from the random streams training will use."""
        import datasets

        dataset, collator = self.train_dataset, self.data_collator
        if isinstance(dataset, datasets.Dataset):
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collator = self._get_collator_with_removed_columns(collator, description="training")
        rows = self.args.per_device_train_batch_size
        if isinstance(dataset, torch.utils.data.IterableDataset):
            return collator(list(itertools.islice(dataset, rows)))
        return collator([dataset[i] for i in range(min(rows, len(dataset)))])

    def _check_token_budgets(self) -> None:
        """Refuse, before the search or training starts, an example longer than a token budget."""
        if self.train_dataset is None:
            return
        budgets = {"max_tokens": self.args.max_tokens}
        if self.args.gradinit and self.args.gradinit_max_tokens is not None:
            budgets["gradinit_max_tokens"] = self.args.gradinit_max_tokens
        for what, budget in budgets.items():
            if budget is not None and not self.args.skip_invalid_size_inputs:
                TokenBudgetBatchSampler(self.train_example_sizes(), budget, what=what)

    def _carry_gradinit_record(self, resume_from_checkpoint: str | bool) -> None:
        checkpoint = (
            get_last_checkpoint(self.args.output_dir) if resume_from_checkpoint is True else resume_from_checkpoint
        )
        config_file = os.path.join(checkpoint, "config.json") if checkpoint else None
        if not config_file or not os.path.isfile(config_file):
            return
        with open(config_file, encoding="utf-8") as f:
            saved = json.load(f)
        config = self.accelerator.unwrap_model(self.model).config
        for key in ("gradinit", "initialization"):
            if saved.get(key) and not getattr(config, key, None):
                setattr(config, key, saved[key])

    def gradinit(self) -> GradInitResult:
        """Run the scale search on the training data, save `output_dir/gradinit/` and return the result."""
        args = self.args
        if args.gradinit_iters == 0:
            logger.info("gradinit_iters=0: no GradInit search, nothing written.")
            return gradinit(self.accelerator.unwrap_model(self.model), [], args)
        if self.train_dataset is None:
            raise ValueError("GradInit needs a train_dataset: the scale search runs on the training data.")
        if hasattr(self.train_dataset, "__len__") and len(self.train_dataset) == 0:
            raise ValueError("train_dataset is empty: the GradInit scale search needs at least one example.")
        model = self.accelerator.unwrap_model(self.model)
        _refuse_sharded(model)
        distributed = self.accelerator.num_processes > 1
        if distributed:
            # What DDP does when it wraps the model: every process starts from the main process's weights.
            sync_parameters(model)
        start, first_record = time.time(), len(self.state.log_history)
        budget = args.search_max_tokens
        logger.info(
            "GradInit search batches: %s per device.",
            f"{budget} tokens (gradinit_max_tokens or max_tokens)"
            if budget is not None
            else f"{args.gradinit_batch_size or args.per_device_train_batch_size} rows (gradinit_batch_size)",
        )
        # The search draws its own batches and dropout masks from a re-seeded stream; training afterwards draws what
        # it would have drawn without a search, so that runs with and without one differ by the scales alone.
        with restored_random_state():
            set_seed(args.seed)
            result = gradinit(
                model,
                self._gradinit_batches(),
                args,
                loss_fn=self._search_loss,
                callback=self._gradinit_logger(),
                reduce=self._mean_across_processes if distributed else None,
                progress_bar=not args.disable_tqdm and self.is_local_process_zero(),
                show=self.show_message if self.is_local_process_zero() else None,
            )
        if distributed:
            # DDP would broadcast the main process's weights and hide a divergence: check before it wraps.
            check_parameters_match(model)
        report = result.report()
        self.log(
            {
                "gradinit_constraint_fraction": result.constraint_fraction,
                "gradinit_first_objective_step": report.get("first_objective_step") or 0,
                "gradinit_grad_norm_first": report.get("grad_norm_first", math.nan),
                "gradinit_grad_norm_last": report.get("grad_norm_last", math.nan),
                "gradinit_loss_first": report.get("loss_first", math.nan),
                "gradinit_loss_last": report.get("loss_last", math.nan),
                "gradinit_scales_at_bound": sum(r["at_floor"] + r["at_ceiling"] for r in report.get("bounds", [])),
                "gradinit_graph_rebuilds": result.graph_rebuilds,
                "gradinit_runtime": round(time.time() - start, 4),
            }
        )
        self._search_logs.records = self.state.log_history[first_record:]
        self.gradinit_result = result
        if args.should_save:
            self.save_gradinit(os.path.join(args.output_dir, GRADINIT_DIR))
            if args.gradinit_push_to_hub:
                try:
                    self.push_initialization_to_hub()
                except GradInitPushError as e:
                    # The search and the local checkpoint are done: a failed upload must not cost the training run.
                    logger.error("%s", e)
        self.accelerator.wait_for_everyone()
        return result

    def push_initialization_to_hub(
        self,
        repo_id: str | None = None,
        private: bool | None = None,
        commit_message: str = "Upload GradInit initialization",
    ) -> str:
        """Push `output_dir/gradinit/` to `repo_id` (default: `args.gradinit_repo_id`); returns the commit URL."""
        if not self.is_world_process_zero():
            return ""
        return push_initialization_to_hub(
            os.path.join(self.args.output_dir, GRADINIT_DIR),
            repo_id or self.args.gradinit_repo_id,
            private=self.args.hub_private_repo if private is None else private,
            token=self.args.hub_token,
            commit_message=commit_message,
        )

    def create_model_card(
        self,
        language: str | list[str] | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
    ) -> None:
        """Write `output_dir/README.md`: the Trainer's card says "fine-tuned version of []" for a model made from
        a config; this one says "trained from scratch", names the data and describes the GradInit search."""
        if not self.is_world_process_zero():
            return
        model = self.accelerator.unwrap_model(self.model)
        if finetuned_from is None:
            finetuned_from = hub_base_model(model)
        as_list = lambda v: [v] if isinstance(v, str) else list(v or [])  # noqa: E731
        last_eval = next((r for r in reversed(self.state.log_history) if any(k.startswith("eval_") for k in r)), {})
        args = self.args
        card = build_model_card(
            model_name=model_name or os.path.basename(os.path.normpath(args.output_dir)),
            load_from=model_name or (args.hub_model_id if args.push_to_hub else None) or args.output_dir,
            model_type=model_kind(model.config),
            base_model=finetuned_from,
            datasets=as_list(dataset) or as_list(dataset_tags),
            languages=as_list(language),
            result=self.gradinit_result,
            gradinit_arguments=getattr(model.config, "gradinit", None) if self.gradinit_result is None else None,
            metrics={k: v for k, v in last_eval.items() if k.startswith("eval_")},
            training_arguments={
                "learning_rate": args.learning_rate,
                **(
                    {"max_tokens (per device)": args.max_tokens}
                    if args.max_tokens is not None
                    else {"per_device_train_batch_size": args.per_device_train_batch_size}
                ),
                "optimizer": f"{args.optim} (betas={args.adam_beta1}, {args.adam_beta2}, eps={args.adam_epsilon})",
                "lr_scheduler_type": str(args.lr_scheduler_type),
                "warmup_steps": args.warmup_steps,
                "label_smoothing_factor": args.label_smoothing_factor,
                "training_steps": self.state.global_step,
                "seed": args.seed,
            },
            extra_tags=as_list(tags) + as_list(tasks),
            post_ln=not is_pre_ln(model),
        )
        card.save(os.path.join(args.output_dir, "README.md"))

    def _mean_across_processes(self, tensors: list[torch.Tensor]) -> None:
        """Average `tensors` in place across processes with one all-reduce of a flat buffer."""
        dtype = functools.reduce(torch.promote_types, (t.dtype for t in tensors), torch.float32)
        flat = self.accelerator.reduce(torch.cat([t.reshape(-1).to(dtype) for t in tensors]), reduction="mean")
        for t, part in zip(tensors, flat.split([t.numel() for t in tensors])):
            t.copy_(part.view_as(t))

    def _show(self, message: str) -> None:
        """A line the user sees by default, once: written under the progress bars by the main process (logged at
        INFO where INFO is shown, and when the bars are off), or to `show_message` when set."""
        if self.show_message is not None:
            if self.is_local_process_zero():
                self.show_message(message)
        elif logger.isEnabledFor(logging.INFO) or self.args.disable_tqdm:
            logger.info(message)
        elif self.is_local_process_zero():
            tqdm.write(message, file=sys.stderr)

    def save_gradinit(self, save_directory: str) -> None:
        """Write the initialized model, its processing class, `scales.json`, a plot of the scales and a model
        card to `save_directory`."""
        if self.gradinit_result is None:
            raise ValueError("No GradInit result to save: run trainer.gradinit() first.")
        save_initialization(
            self.accelerator.unwrap_model(self.model),
            self.gradinit_result,
            save_directory,
            self.processing_class,
            **{
                "model_name": self.args.gradinit_repo_id if self.args.gradinit_push_to_hub else None,
                **self.gradinit_card_data,
            },
        )
        self._show(f"GradInit: the initialized model, its scales.json and model card are in {save_directory}")

    def _search_loss(self, model, batch) -> torch.Tensor:
        """The trainer's loss on S̃ or S of this process, as a sum over its tokens divided by the token count of
        all processes (times their number, which the search's averaging divides out): the processes' mean is then
        the loss of one process on the union of their S̃ (or S), however many tokens each holds."""
        batch = dict(batch)
        count = self._get_num_items_in_batch([batch], self.args.device)
        return self.compute_loss(model, batch, num_items_in_batch=count)

    def _gradinit_batches(self) -> Iterator[dict[str, Any]]:
        """Batches of the train dataloader at the search's batch size or token budget, epoch after epoch."""
        budget = self.args.search_max_tokens
        if budget is not None:
            what = "gradinit_max_tokens" if self.args.gradinit_max_tokens is not None else "max_tokens"
            # S̃ and S take 2/3 of a batch's rows each: batches of fewer than 3 rows are left out.
            dataloader = token_budget_dataloader(self, budget, what=what, min_rows=MIN_SEARCH_BATCH_ROWS)
        else:
            saved = self._train_batch_size
            if self.args.gradinit_batch_size is not None:
                self._train_batch_size = self.args.gradinit_batch_size * max(1, self.args.n_gpu)
            try:
                dataloader = super().get_train_dataloader()
            finally:
                self._train_batch_size = saved
        epoch = 0
        while True:
            if hasattr(dataloader, "set_epoch"):
                dataloader.set_epoch(epoch)
            count = 0
            for batch in dataloader:
                count += 1
                yield self._prepare_inputs(batch)
            if count == 0:
                return
            epoch += 1

    def _gradinit_logger(self):
        """A search callback that calls `self.log` with window averages every `logging_steps` iterations."""
        iters = self.args.gradinit_iters
        every = self.args.logging_steps
        every = max(1, math.ceil(iters * every) if every < 1 else int(every))
        window: list[dict[str, Any]] = []

        def log(record: dict[str, Any], search: GradInitSearch) -> None:
            window.append(record)
            if record["step"] % every and record["step"] != iters:
                return
            alpha = search.alpha
            self.log(
                {
                    "gradinit_iteration": record["step"],
                    "gradinit_loss": sum(r["loss"] for r in window) / len(window),
                    "gradinit_grad_norm": sum(r["grad_norm"] for r in window) / len(window),
                    "gradinit_constraint_steps": sum(r["constraint"] for r in window),
                    "gradinit_scale_min": alpha.min().item(),
                    "gradinit_scale_mean": alpha.mean().item(),
                    "gradinit_scale_max": alpha.max().item(),
                }
            )
            window.clear()

        return log
