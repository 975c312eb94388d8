"""A pretrained tokenizer, or a joint source/target one trained on the training split with `tokenizers`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

# The ids BART, FSMT and fairseq use: <s>=0, <pad>=1, </s>=2, <unk>=3.
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]
# How the text is prepared before the subword model sees it.
PREPROCESSINGS = {
    "sentencepiece": "NFKC, SentencePiece-style word boundaries (punctuation stays on its word: 'innen;')",
    # fairseq's prepare-iwslt14.sh, the GradInit paper's data: Moses tokenization (punctuation split off the words),
    # lowercasing, then BPE. Here from `tokenizers`' parts, keeping the word boundaries so that decoding gives back
    # the (lowercased) text rather than Moses' spaced tokens.
    "paper": "NFKC, lowercased, punctuation split off the words ('innen', ';'), word boundaries kept",
}


def train_tokenizer(
    texts: Iterable[str], tokenizer_type: str = "bpe", vocab_size: int = 10000, preprocessing: str = "sentencepiece"
) -> PreTrainedTokenizerFast:
    """Train a BPE or unigram tokenizer with `</s>` appended; `preprocessing` is one of `PREPROCESSINGS`:
    'sentencepiece' (NFKC, word boundaries as SentencePiece marks them) or 'paper' (the GradInit paper's data
    preparation: also lowercased, punctuation split off the words)."""
    if preprocessing not in PREPROCESSINGS:
        raise ValueError(f"preprocessing must be one of {sorted(PREPROCESSINGS)}, got {preprocessing!r}.")
    if tokenizer_type == "bpe":
        model = models.BPE(unk_token="<unk>")
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    elif tokenizer_type == "unigram":
        model = models.Unigram()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="<unk>", show_progress=False
        )
    else:
        raise ValueError(f"tokenizer_type must be 'bpe' or 'unigram', got {tokenizer_type!r}.")
    backend = Tokenizer(model)
    if preprocessing == "paper":
        backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        # Word boundaries first (a '▁' where a space was), then each punctuation mark a piece of its own.
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation("isolated")]
        )
    else:
        backend.normalizer = normalizers.NFKC()
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.train_from_iterator(texts, trainer=trainer)
    if backend.get_vocab_size() < vocab_size:
        logger.warning(
            "The trained %s vocabulary has %d tokens, fewer than vocab_size=%d: the training text has no more to "
            "learn. The tokenizer and the model use %d.",
            tokenizer_type,
            backend.get_vocab_size(),
            vocab_size,
            backend.get_vocab_size(),
        )
    eos = backend.token_to_id("</s>")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def _both_sides(dataset, source_lang: str, target_lang: str, batch_size: int = 1000) -> Iterator[str]:
    for start in range(0, len(dataset), batch_size):
        for pair in dataset[start : start + batch_size]["translation"]:
            yield pair[source_lang]
            yield pair[target_lang]


def check_tokenizer_source(model_args) -> None:
    """Refuse, before any work, flags that name no tokenizer: a model trained from scratch has none of its own. (A
    caller that builds the model with `build_model` from a tokenizer it made needs none of these flags.)"""
    if model_args.model_name_or_path is None and model_args.tokenizer_name is None and not model_args.train_tokenizer:
        raise ValueError("A model trained from scratch needs a tokenizer: pass --train_tokenizer or --tokenizer_name.")


def load_or_train_tokenizer(model_args, data_args, raw_datasets) -> PreTrainedTokenizerFast:
    """`--train_tokenizer`: a joint vocabulary from the training split; otherwise the pretrained tokenizer."""
    if model_args.train_tokenizer:
        if "train" not in raw_datasets:
            raise ValueError("--train_tokenizer needs a training split (--train_file or a dataset with 'train').")
        texts = _both_sides(raw_datasets["train"], data_args.source_lang, data_args.target_lang)
        return train_tokenizer(
            texts, model_args.tokenizer_type, model_args.vocab_size, model_args.tokenizer_preprocessing
        )
    return AutoTokenizer.from_pretrained(
        model_args.tokenizer_name or model_args.model_name_or_path,
        cache_dir=model_args.cache_dir,
        revision=model_args.model_revision,
        token=model_args.token,
    )
