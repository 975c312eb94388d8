"""The paper's code's two search details, available as options: its θ′ leaves a tied output projection at θ, and
a bias whose scale reached 0 stays there."""

import copy

import pytest
import torch
from helpers import batches, tiny_bart, tiny_marian, tiny_tokenizer

from hf_gradinit import GradInitArguments, GradInitSearch, fairseq_init_, gradinit
from hf_gradinit.search_mode import search_mode

ETA = 1e-3


def _rows(batch, sl):
    return {k: v[sl] for k, v in batch.items()}


def _untied_objective_gradients(model, batch):
    """dF/dθ of F = L(θ′; S)/η written out on an untied float64 copy: every tensor at θ − η·sign(g), g = ∇L(θ; S̃),
    except the output projection, which stays at θ. Its own S̃/S split (first and last 6 of 9 rows)."""
    tied = copy.deepcopy(model).double().eval()
    s_tilde, s = _rows(batch, slice(0, 6)), _rows(batch, slice(3, 9))
    params = {n: p for n, p in tied.named_parameters() if p.requires_grad}
    g = torch.autograd.grad(tied(**s_tilde).loss, list(params.values()))
    config = copy.deepcopy(tied.config)
    config.tie_word_embeddings = False
    untied = type(tied)(config).double().eval()
    untied.load_state_dict({k: v.detach().clone() for k, v in tied.state_dict().items()}, strict=False)
    moved = {n: p for n, p in untied.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for (name, p), gi in zip(params.items(), g):
            moved[name].copy_(p - ETA * gi.sign())
        moved["lm_head.weight"].copy_(tied.lm_head.weight)
    objective = untied(**s).loss / ETA
    grads = torch.autograd.grad(objective, list(moved.values()), allow_unused=True)
    return objective.item() * ETA, {n: torch.zeros_like(moved[n]) if x is None else x for n, x in zip(moved, grads)}


def test_reference_step_keeps_the_tied_output_projection_at_theta():
    torch.manual_seed(0)
    tok = tiny_tokenizer()
    # Marian with separate encoder embeddings: the decoder's input embedding is the output projection (fairseq's
    # --share-decoder-input-output-embed, the paper's model).
    model = tiny_marian(share_encoder_decoder_embeddings=False).double()
    assert model.lm_head.weight is model.model.decoder.embed_tokens.weight
    batch = batches(tok, model, 1, 9)[0]
    loss_ref, grads = _untied_objective_gradients(model, batch)
    expected = None
    for moves in (False, True):
        args = GradInitArguments(gradinit_gamma=1e9, gradinit_eta=ETA, gradinit_step_moves_tied_output=moves)
        with search_mode(model):
            search = GradInitSearch(model, args)
            record, d_alpha = search.alpha_gradient(batch)
            search.write_parameters()
        if expected is None:
            expected = torch.tensor(
                [
                    float(
                        (grads[t.name] + (grads["lm_head.weight"] if t.param is model.lm_head.weight else 0))
                        .mul(t.param.detach())
                        .sum()
                    )
                    for t in search.scaled
                ],
                dtype=torch.float64,
            )
        error = (d_alpha - expected).abs().max() / expected.abs().max()
        if not moves:
            assert abs(record["objective"] - loss_ref) < 1e-12
            assert error < 1e-12  # measured 1.4e-15
        else:
            # Moving the output role too (the default) is another objective: far from the reference's.
            assert error > 0.1 and abs(record["objective"] - loss_ref) > 1e-4


def test_reference_step_is_for_adam_and_leaves_untied_models_alone():
    with pytest.raises(ValueError, match="gradinit_step_moves_tied_output=False .* gradinit_alg='adam'"):
        GradInitArguments(gradinit_alg="sgd", gradinit_step_moves_tied_output=False)
    tok = tiny_tokenizer()
    model = tiny_bart(tie_word_embeddings=False)
    batch = batches(tok, model, 1, 9)[0]
    d = []
    for moves in (True, False):
        with search_mode(model):
            search = GradInitSearch(
                model, GradInitArguments(gradinit_gamma=1e9, gradinit_step_moves_tied_output=moves)
            )
            d.append(search.alpha_gradient(batch)[1])
            search.write_parameters()
    assert search.tied_output is None and torch.equal(d[0], d[1])


def _bias_trajectories(freeze):
    tok = tiny_tokenizer()
    model = tiny_bart(seed=0)
    fairseq_init_(model, generator=torch.Generator().manual_seed(0))  # non-zero biases, which are scaled
    trajectory = []
    result = gradinit(
        model,
        batches(tok, model, 4, 6),
        GradInitArguments(gradinit_iters=80, gradinit_lr=0.3, gradinit_gamma=1e9, gradinit_freeze_zero_biases=freeze),
        callback=lambda record, search: trajectory.append(search.alpha.clone()),
        progress_bar=False,
    )
    alphas = torch.stack(trajectory)
    biases = [i for i, group in enumerate(result.groups.values()) if group == "bias"]
    return {i: alphas[:, i] for i in biases}


def test_frozen_biases_stay_at_zero_and_free_ones_can_come_back():
    def came_back(path):
        zero = (path == 0).nonzero()
        return bool(zero.numel()) and bool((path[zero[0, 0] :] > 0).any())

    frozen, free = _bias_trajectories(True), _bias_trajectories(False)
    assert sum((path == 0).any().item() for path in frozen.values()) >= 5  # measured 13 of 26
    assert not any(came_back(path) for path in frozen.values())
    assert sum(came_back(path) for path in free.values()) >= 3  # measured 10 of 26
