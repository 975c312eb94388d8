"""BLEU and chrF with sacreBLEU, computed locally (the `evaluate` library downloads its metrics at run time)."""

from __future__ import annotations

import numpy as np
import sacrebleu


def decode(tokenizer, ids) -> list[str]:
    """Token ids to text, with the -100 of ignored label positions read as padding."""
    ids = np.where(np.asarray(ids) != -100, ids, tokenizer.pad_token_id)
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def translation_metrics(tokenizer):
    """A `compute_metrics` for `Seq2SeqTrainer` with `predict_with_generate=True`: bleu, chrf, gen_len."""

    def compute_metrics(eval_preds):
        preds, labels = eval_preds
        if isinstance(preds, tuple):
            preds = preds[0]
        hypotheses, references = decode(tokenizer, preds), decode(tokenizer, labels)
        lengths = np.count_nonzero(
            (np.asarray(preds) != tokenizer.pad_token_id) & (np.asarray(preds) != -100), axis=-1
        )
        return {
            "bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score,
            "chrf": sacrebleu.corpus_chrf(hypotheses, [references]).score,
            "gen_len": float(np.mean(lengths)),
        }

    return compute_metrics
