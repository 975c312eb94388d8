"""Token-budget batches: the sampler against fairseq's packing rule, and the trainer's use of it."""

import logging

import numpy as np
import pytest
import torch
from accelerate.data_loader import BatchSamplerShard
from datasets import Dataset
from helpers import collator, tiny_bart, tiny_tokenizer

from hf_gradinit import GradInitConfig, GradInitTrainer
from hf_gradinit.token_batches import TokenBudgetBatchSampler, example_lengths, example_sizes


def _lengths(n=500, seed=0, low=2, high=65):
    return np.random.default_rng(seed).integers(low, high, n)


@pytest.mark.parametrize("budget", [64, 300, 1000])
def test_batches_keep_the_budget_and_every_example_once_per_epoch(budget):
    lengths = _lengths()
    sampler = TokenBudgetBatchSampler(lengths, budget, seed=3)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert all(len(b) * lengths[b].max() <= budget for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert len(batches) == len(sampler)


def test_packing_without_a_row_multiple_is_fairseqs_greedy_rule():
    """Before the epoch's shuffle the batches follow the length order, and each is as large as the budget allows:
    one more example (the next batch's first) would exceed it."""
    lengths, budget = _lengths(), 300
    batches = TokenBudgetBatchSampler(lengths, budget, seed=1, batch_size_multiple=1).batches
    flat = np.concatenate([lengths[b] for b in batches])
    assert (np.diff(flat) >= 0).all()
    for batch, following in zip(batches, batches[1:]):
        grown = batch + following[:1]
        assert len(grown) * lengths[grown].max() > budget
    # Few rows of long examples, many of short ones.
    assert len(batches[-1]) < len(batches[0])


def test_full_batches_are_cut_back_to_multiples_of_8_rows_as_fairseqs():
    """fairseq's default --required-batch-size-multiple 8: a batch closes at its last multiple of 8 rows, and the
    rows after it start the next; so every batch but the last has a multiple of 8 rows, and 8 rows more (the
    next batch's first) would exceed the budget. The rows after the last multiple at the end of the data are a
    batch of their own. The budget holds 8 of the longest examples, so no tail is ever too big on its own."""
    lengths, budget = _lengths(), 1000
    batches = TokenBudgetBatchSampler(lengths, budget, seed=1).batches
    flat = np.concatenate([lengths[b] for b in batches])
    assert (np.diff(flat) >= 0).all() and len(flat) == len(lengths)
    assert len(batches[-1]) % 8 == 0 or len(batches[-1]) < 8
    for batch, following in zip(batches[:-1], batches[1:-1]):
        assert len(batch) % 8 == 0 and len(batch) * lengths[batch].max() <= budget
        grown = batch + following[:8]
        assert len(grown) * lengths[grown].max() > budget
    # The cut is visible: some batch had room for another row of its own length, which plain greedy packing takes.
    assert any((len(batch) + 1) * lengths[batch].max() <= budget for batch in batches[:-1])


def test_a_tail_too_long_for_the_next_row_closes_as_a_batch_of_its_own():
    """Twenty rows of 5 tokens, then three of 30, budget 100. The batch grows to 16 rows (a multiple of 8); rows 17
    to 20 wait as its tail; row 21 (30 tokens) overflows the batch, and the tail with it would cost 5 × 30 > 100,
    so the tail closes on its own and row 21 starts the next batch, which the last two rows join (3 × 30 = 90)."""
    lengths = np.array([5] * 20 + [30] * 3)
    batches = TokenBudgetBatchSampler(lengths, 100, seed=0).batches
    assert [len(b) for b in batches] == [16, 4, 3]
    assert all(len(b) * lengths[b].max() <= 100 for b in batches)


def test_pairs_are_ordered_by_source_then_target_length_and_cost_their_longer_side():
    """fairseq's translation order: by source length, then target length; a row costs its longer side."""
    rng = np.random.default_rng(4)
    sizes = np.stack([rng.integers(2, 30, 400), rng.integers(2, 30, 400)], axis=1)
    sampler = TokenBudgetBatchSampler(sizes, 240, seed=2)
    flat = [tuple(sizes[i]) for b in sampler.batches for i in b]
    assert flat == sorted(flat) and len(flat) == len(sizes)
    for batch in sampler.batches:
        assert len(batch) * sizes[batch].max() <= 240
    # The same lengths as one number a row: ordered by it, not by the source.
    by_longest = TokenBudgetBatchSampler(sizes.max(axis=1), 240, seed=2).batches
    assert by_longest != sampler.batches
    assert all(np.diff(np.concatenate([sizes[b].max(axis=1) for b in by_longest])) >= 0)


def test_seed_fixes_the_batches_and_each_epoch_reorders_them():
    lengths = _lengths()
    a, b, other = (TokenBudgetBatchSampler(lengths, 300, seed=s) for s in (7, 7, 8))
    assert list(a) == list(b)
    assert list(a) != list(other)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first
    assert sorted(map(tuple, second)) == sorted(map(tuple, first))  # the same batches, in another order


def test_two_processes_get_disjoint_whole_batches_covering_the_epoch():
    lengths = _lengths(n=301)
    sampler = TokenBudgetBatchSampler(lengths, 200, seed=0, num_processes=2)
    assert len(sampler) % 2 == 0
    shards = [list(BatchSamplerShard(sampler, num_processes=2, process_index=r)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(sampler) // 2
    seen = [i for shard in shards for b in shard for i in b]
    assert sorted(seen) == list(range(len(lengths)))
    assert all(len(b) * lengths[b].max() <= 200 for shard in shards for b in shard)
    assert {tuple(b) for b in shards[0]} | {tuple(b) for b in shards[1]} == {tuple(b) for b in sampler.batches}


@pytest.mark.parametrize("num_processes", [2, 3, 4])
def test_batches_dealt_to_n_processes_repeat_and_drop_nothing(num_processes):
    """With a batch count that is not a multiple of N, Accelerate's shard would repeat the first batches to even
    the processes out: the sampler splits batches first, so that each example is dealt exactly once."""
    lengths, budget = _lengths(n=301), 260  # 47 batches: a multiple of none of 2, 3, 4
    unsplit = len(TokenBudgetBatchSampler(lengths, budget, seed=0))
    assert unsplit % num_processes, "pick data whose batch count needs splitting"
    sampler = TokenBudgetBatchSampler(lengths, budget, seed=0, num_processes=num_processes)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        shards = [
            list(BatchSamplerShard(sampler, num_processes=num_processes, process_index=r))
            for r in range(num_processes)
        ]
        assert len({len(shard) for shard in shards}) == 1
        seen = [i for shard in shards for b in shard for i in b]
        assert len(seen) == len(lengths) and sorted(seen) == list(range(len(lengths)))
        assert all(len(b) * lengths[b].max() <= budget for shard in shards for b in shard)


def test_batches_too_small_to_split_are_dealt_with_a_warning(caplog):
    """Three one-row batches cannot be split for two processes: the sampler says Accelerate will repeat one."""
    with caplog.at_level(logging.WARNING, logger="hf_gradinit.token_batches"):
        sampler = TokenBudgetBatchSampler([10, 10, 10], 10, num_processes=2)
    assert len(sampler) == 3
    assert "cannot be dealt evenly to 2 processes" in caplog.text


def test_an_example_longer_than_the_budget_is_refused_or_dropped(caplog):
    lengths = np.array([5, 9, 40, 7, 51, 3])
    with pytest.raises(ValueError, match=r"Training example 2 has 40 tokens, more than max_tokens=30 \(2 such"):
        TokenBudgetBatchSampler(lengths, 30)
    with caplog.at_level(logging.WARNING, logger="hf_gradinit.token_batches"):
        sampler = TokenBudgetBatchSampler(lengths, 30, skip_too_long=True)
    assert "Dropped 2 training examples longer than max_tokens=30" in caplog.text
    assert sorted(i for b in sampler for i in b) == [0, 1, 3, 5]


def test_example_lengths_are_the_longer_side_through_the_datasets_row_mapping():
    ds = Dataset.from_dict({"input_ids": [[1] * 4, [1] * 2, [1] * 7], "labels": [[1] * 3, [1] * 6, [1] * 1]})
    assert example_lengths(ds).tolist() == [4, 6, 7]
    assert example_sizes(ds).tolist() == [[4, 3], [2, 6], [7, 1]]
    assert example_sizes(ds.select([2, 0])).tolist() == [[7, 1], [4, 3]]
    assert example_sizes([{"labels": [1, 2, 3]}]).tolist() == [[0, 3]]
    assert example_lengths(ds.select([2, 0])).tolist() == [7, 4]
    assert example_lengths([{"input_ids": [1, 2], "labels": [1, 2, 3]}]).tolist() == [3]
    with pytest.raises(ValueError, match="the training dataset has no 'input_ids' or 'labels' column"):
        example_lengths(Dataset.from_dict({"text": ["a"]}))


def _varied_dataset(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = [torch.randint(5, 40, (int(k),), generator=g).tolist() for k in torch.randint(2, 15, (n,), generator=g)]
    tgt = [torch.randint(5, 40, (int(k),), generator=g).tolist() for k in torch.randint(2, 12, (n,), generator=g)]
    return Dataset.from_dict({"input_ids": src, "attention_mask": [[1] * len(s) for s in src], "labels": tgt})


def _config(tmp_path, **kwargs):
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        gradinit_iters=4,
        max_steps=3,
        seed=0,
    )
    return GradInitConfig(**{**defaults, **kwargs})


class _Recording(GradInitTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.search_batches, self.train_batches = [], []

    def _gradinit_batches(self):
        for batch in super()._gradinit_batches():
            self.search_batches.append(batch["input_ids"].clone())
            yield batch

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.train_batches.append(inputs["input_ids"].clone())
        return super().training_step(model, inputs, num_items_in_batch)


def _padded_tokens(batch):
    return batch.shape[0] * batch.shape[1]


def test_trainer_searches_and_trains_on_their_own_budgets(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    ds = _varied_dataset()
    longest = example_lengths(ds)
    args = _config(tmp_path, max_tokens=40, gradinit_max_tokens=90)
    trainer = _Recording(model, args, ds, data_collator=collator(tok, model))
    trainer.train()
    assert len(trainer.search_batches) == 4 and len(trainer.train_batches) == 3
    # The collated source may be shorter than the budgeted length (the labels can be the longer side).
    assert all(_padded_tokens(b) <= 90 for b in trainer.search_batches)
    assert all(_padded_tokens(b) <= 40 for b in trainer.train_batches)
    assert max(b.shape[0] for b in trainer.search_batches) > max(b.shape[0] for b in trainer.train_batches)
    # One epoch of the training dataloader holds every example once.
    seen = [i for b in trainer.get_train_dataloader().batch_sampler for i in b]
    assert sorted(seen) == list(range(len(ds)))
    assert longest.max() <= 40
    trainer.create_model_card()
    assert "- max_tokens (per device): 40\n" in (tmp_path / "out" / "README.md").read_text()


def test_train_samples_per_second_counts_the_rows_of_token_budget_batches(tmp_path):
    """max_steps of exactly two epochs of token-budget batches train every example twice (120 rows of the 60),
    whatever the batches hold; the Trainer's own count is per_device_train_batch_size (8) rows a step."""
    tok, model = tiny_tokenizer(), tiny_bart()
    probe = GradInitTrainer(
        model, _config(tmp_path, max_tokens=40), _varied_dataset(), data_collator=collator(tok, model)
    )
    steps = 2 * len(probe.get_train_dataloader())
    args = _config(tmp_path, max_tokens=40, gradinit=False, max_steps=steps)
    trainer = GradInitTrainer(model, args, _varied_dataset(), data_collator=collator(tok, model))
    metrics = trainer.train().metrics
    assert trainer.state.global_step == steps and steps * args.per_device_train_batch_size != 120
    rows = metrics["train_samples_per_second"] * metrics["train_runtime"]
    assert abs(rows / 120 - 1) < 1e-2, (rows, steps)
    logged = [r for r in trainer.state.log_history if "train_runtime" in r][0]
    assert logged["train_samples_per_second"] == metrics["train_samples_per_second"]


def test_search_falls_back_to_the_training_budget_and_rows(tmp_path):
    args = _config(tmp_path, max_tokens=50)
    assert args.search_max_tokens == 50
    assert _config(tmp_path, max_tokens=50, gradinit_batch_size=4).search_max_tokens is None
    assert _config(tmp_path, max_tokens=50, gradinit_max_tokens=70).search_max_tokens == 70
    assert _config(tmp_path).search_max_tokens is None
    with pytest.raises(ValueError, match="gradinit_batch_size .* or gradinit_max_tokens .* not both"):
        _config(tmp_path, gradinit_batch_size=4, gradinit_max_tokens=70)
    with pytest.raises(ValueError, match="max_tokens must be a positive number of tokens"):
        _config(tmp_path, max_tokens=0)
    with pytest.raises(ValueError, match="gradinit_max_tokens must be >= 3"):
        _config(tmp_path, gradinit_max_tokens=2)
    with pytest.raises(ValueError, match="train_sampling_strategy='group_by_length' cannot apply"):
        _config(tmp_path, max_tokens=50, train_sampling_strategy="group_by_length")


def test_too_long_example_is_refused_before_the_search(tmp_path):
    tok, model = tiny_tokenizer(), tiny_bart()
    ds = _varied_dataset()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    longest = int(example_lengths(ds).max())
    index = int(np.argmax(example_lengths(ds)))
    trainer = _Recording(
        model,
        _config(tmp_path, max_tokens=200, gradinit_max_tokens=longest - 1),
        ds,
        data_collator=collator(tok, model),
    )
    with pytest.raises(
        ValueError, match=f"Training example {index} has {longest} tokens, more than gradinit_max_tokens"
    ):
        trainer.train()
    assert trainer.search_batches == []
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    # With the flag, the long examples are left out and the run goes on.
    trainer = _Recording(
        model,
        _config(tmp_path, max_tokens=longest - 1, skip_invalid_size_inputs=True, gradinit_iters=0),
        ds,
        data_collator=collator(tok, model),
    )
    trainer.train()
    assert all(b.shape[1] <= longest - 1 for b in trainer.train_batches)


def test_resume_continues_the_same_batch_order(tmp_path):
    """Training interrupted in its second epoch and resumed from the checkpoint sees the batches the
    uninterrupted run saw, step for step."""
    tok = tiny_tokenizer()
    ds = _varied_dataset(n=30)
    common = dict(max_tokens=60, gradinit_iters=0, save_strategy="steps", save_steps=1, max_steps=12)

    def run(output, resume=None, max_steps=12):
        model = tiny_bart()
        args = _config(tmp_path, **{**common, "output_dir": str(tmp_path / output), "max_steps": max_steps})
        trainer = _Recording(model, args, ds, data_collator=collator(tok, model))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run("full")
    epoch_steps = len(full.get_train_dataloader())
    assert epoch_steps < 8 < 12  # checkpoint 8 lies in the second epoch
    resumed = run("full", resume=str(tmp_path / "full" / "checkpoint-8"))
    assert len(resumed.train_batches) == 4
    for a, b in zip(resumed.train_batches, full.train_batches[8:]):
        assert torch.equal(a, b)
    assert not torch.equal(full.train_batches[0], full.train_batches[epoch_steps]) or epoch_steps == 1


def test_a_resumed_epoch_of_one_of_two_processes_keeps_its_batch_order():
    """Accelerate wraps the sampler for each process (BatchSamplerShard) and once more when a resumed run skips
    batches (SkipBatchSampler); the epoch the Trainer sets must still reach the sampler."""
    from types import SimpleNamespace

    from accelerate.data_loader import prepare_data_loader, skip_first_batches

    from hf_gradinit.token_batches import token_budget_dataloader

    tok, model, ds = tiny_tokenizer(), tiny_bart(), _varied_dataset(n=60)
    collate = collator(tok, model)
    trainer = SimpleNamespace(
        args=GradInitConfig(output_dir="unused", max_tokens=60, report_to="none", use_cpu=True, seed=5),
        train_dataset=ds,
        data_collator=collate,
        train_example_sizes=lambda: example_sizes(ds),
        _remove_unused_columns=lambda dataset, description: dataset,
        accelerator=SimpleNamespace(
            num_processes=2,
            prepare=lambda loader: prepare_data_loader(loader, num_processes=2, process_index=0, put_on_device=False),
        ),
    )
    resumed = skip_first_batches(token_budget_dataloader(trainer, 60, what="max_tokens"), 2)
    # What the Trainer's epoch loop does with a resumed dataloader.
    resumed.set_epoch(3)
    resumed.batch_sampler.batch_sampler.set_epoch(3)
    expected = TokenBudgetBatchSampler(example_sizes(ds), 60, seed=5, num_processes=2)
    expected.set_epoch(3)
    mine = list(expected)[0::2][2:]
    got = [b["input_ids"] for b in resumed]
    assert len(got) == len(mine) > 0
    for batch, rows in zip(got, mine):
        assert torch.equal(batch, collate([ds[i] for i in rows])["input_ids"])
