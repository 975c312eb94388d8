"""The client side of the Hub tests, run in its own process so that HF_ENDPOINT is set before
huggingface_hub is imported. Usage: python hub_client.py COMMAND OUT_DIR REPO_ID"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from helpers import collator, tiny_bart, tiny_config, tiny_tokenizer, tokenized_dataset  # noqa: E402
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer  # noqa: E402

from hf_gradinit import GradInitTrainer, is_gradinit_initialized  # noqa: E402

command, out, repo_id = sys.argv[1:4]


def trainer_for(model, tokenizer, **kw):
    args = tiny_config(os.path.join(out, "run"), gradinit_iters=4, per_device_train_batch_size=8, max_steps=2, **kw)
    return GradInitTrainer(
        model=model,
        args=args,
        train_dataset=tokenized_dataset(tokenizer, 32),
        data_collator=collator(tokenizer, model),
        processing_class=tokenizer,
    )


if command == "search-and-push":
    tok = tiny_tokenizer()
    trainer = trainer_for(tiny_bart(), tok, gradinit_push_to_hub=True, gradinit_hub_model_id=repo_id)
    trainer.gradinit()
    torch.save({n: p.detach().clone() for n, p in trainer.model.named_parameters()}, os.path.join(out, "pushed.pt"))
elif command == "search-and-push-explicit":
    tok = tiny_tokenizer()
    trainer = trainer_for(tiny_bart(), tok)
    trainer.gradinit()
    trainer.push_initialization_to_hub(repo_id)
elif command == "load-and-train":
    model = AutoModelForSeq2SeqLM.from_pretrained(repo_id)
    tok = AutoTokenizer.from_pretrained(repo_id)
    assert is_gradinit_initialized(model)
    torch.save({n: p.detach().clone() for n, p in model.named_parameters()}, os.path.join(out, "loaded.pt"))
    trainer = trainer_for(model, tok)
    trainer.train()
    assert trainer.gradinit_result is None, "a second search ran"
    assert trainer.state.global_step == 2
    print("TRAINED-WITHOUT-SEARCH")
else:
    raise SystemExit(f"unknown command {command}")
