#!/usr/bin/env python
"""Train a Post-LN encoder-decoder for translation from scratch (or fine-tune one) with GradInit.

Shaped like the Hugging Face `run_translation.py` example: the same data and model flags, plus the `gradinit_*`
flags of `GradInitConfig`. Arguments come from the command line or from one JSON file:

    python examples/translation/run_translation.py \\
        --model_type bart --preset iwslt14 --train_tokenizer --vocab_size 10000 \\
        --train_file train.jsonl.gz --validation_file validation.jsonl --source_lang de --target_lang en \\
        --output_dir out --do_train --do_eval --predict_with_generate --num_beams 5 \\
        --learning_rate 5e-4 --adam_beta2 0.98 --label_smoothing_factor 0.1 --gradinit_iters 780

    python examples/translation/run_translation.py examples/translation/iwslt14.json
"""

import logging
import os
import sys

import datasets
import transformers
from transformers import DataCollatorForSeq2Seq, set_seed
from transformers.trainer_utils import get_last_checkpoint

from hf_gradinit import GradInitConfig, GradInitTrainer
from hf_gradinit.translation import dataset_label, parse_translation_arguments, prepare, translation_metrics
from hf_gradinit.translation.metrics import decode

logger = logging.getLogger(__name__)


def setup_logging(training_args: GradInitConfig) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    for lib_logger in (logger, logging.getLogger("hf_gradinit")):
        lib_logger.setLevel(log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def main():
    model_args, data_args, training_args = parse_translation_arguments()
    setup_logging(training_args)
    logger.info("Training/evaluation parameters %s", training_args)

    last_checkpoint = None
    if training_args.do_train and os.path.isdir(training_args.output_dir):
        last_checkpoint = get_last_checkpoint(training_args.output_dir)
        if last_checkpoint is not None:
            logger.info("Checkpoint found at %s: training resumes from it (no GradInit search).", last_checkpoint)
    set_seed(training_args.seed)

    # Data, tokenizer (trained on the training split with --train_tokenizer), model (from scratch with --model_type).
    tokenizer, model, tokenized = prepare(model_args, data_args, training_args)

    label_pad_token_id = -100 if data_args.ignore_pad_token_for_loss else tokenizer.pad_token_id
    trainer = GradInitTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"] if training_args.do_train else None,
        eval_dataset=tokenized["validation"] if training_args.do_eval else None,
        # With the model, the collator builds decoder_input_ids from the labels (FSMT needs them).
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=label_pad_token_id),
        processing_class=tokenizer,
        compute_metrics=translation_metrics(tokenizer) if training_args.predict_with_generate else None,
    )

    if training_args.do_train:
        checkpoint = training_args.resume_from_checkpoint or last_checkpoint
        # The search (unless resuming) prints its report and where the initialized checkpoint went.
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        metrics = train_result.metrics
        metrics["train_samples"] = len(tokenized["train"])
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()

    if training_args.do_eval:
        metrics = trainer.evaluate(metric_key_prefix="eval", num_beams=data_args.num_beams)
        metrics["eval_samples"] = len(tokenized["validation"])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    if training_args.do_predict:
        results = trainer.predict(tokenized["test"], metric_key_prefix="predict", num_beams=data_args.num_beams)
        metrics = results.metrics
        metrics["predict_samples"] = len(tokenized["test"])
        trainer.log_metrics("predict", metrics)
        trainer.save_metrics("predict", metrics)
        if trainer.is_world_process_zero() and training_args.predict_with_generate:
            with open(os.path.join(training_args.output_dir, "generated_predictions.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(decode(tokenizer, results.predictions)) + "\n")

    card = {
        "language": [data_args.source_lang, data_args.target_lang],
        "tasks": "translation",
        "dataset": dataset_label(data_args),
    }
    if data_args.dataset_config_name:
        card["dataset_args"] = data_args.dataset_config_name
    if training_args.push_to_hub:
        trainer.push_to_hub(**card)
    else:
        trainer.create_model_card(**card)
    # Under torchrun: every process meets here and the process group ends before the interpreter's teardown.
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError) as error:
        # A user's mistake (a flag, a file, a column): one line and argparse's exit status, no traceback.
        print(f"run_translation.py: error: {error}", file=sys.stderr)
        sys.exit(2)
