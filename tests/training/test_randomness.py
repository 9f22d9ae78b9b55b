"""Draws from seeds derived from (seed, stage, rank, step): reproducible, independent across ranks and steps, and
never moving the global generator."""
import torch

from qiren_gen.training.prior import make_training_scheduler, prior_batch
from qiren_gen.training.randomness import STAGE_FUNCTA, STAGE_PRIOR, derive_seed, seeded_default_rng, step_generator


def test_derived_seeds_depend_on_every_part():
    base = derive_seed(0, STAGE_PRIOR, 0, 5)
    assert base == derive_seed(0, STAGE_PRIOR, 0, 5)
    others = {derive_seed(1, STAGE_PRIOR, 0, 5), derive_seed(0, STAGE_FUNCTA, 0, 5), derive_seed(0, STAGE_PRIOR, 1, 5),
              derive_seed(0, STAGE_PRIOR, 0, 6)}
    assert base not in others and len(others) == 4
    a, b = step_generator(0, STAGE_PRIOR, 0, 5), step_generator(0, STAGE_PRIOR, 0, 5)
    assert torch.equal(torch.randn(8, generator=a), torch.randn(8, generator=b))


def test_seeded_default_rng_fixes_module_init_and_dropout_and_restores_the_global_state():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    with seeded_default_rng(4, STAGE_PRIOR, 0, -1):
        first = torch.nn.Linear(3, 3).weight.detach().clone()
        mask = torch.nn.functional.dropout(torch.ones(64), 0.5)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is where it was
    torch.randn(100)  # whatever happened to it in between
    with seeded_default_rng(4, STAGE_PRIOR, 0, -1):
        assert torch.equal(torch.nn.Linear(3, 3).weight, first)
        assert torch.equal(torch.nn.functional.dropout(torch.ones(64), 0.5), mask)


def test_prior_batches_are_reproducible_per_rank_and_step_and_differ_across_ranks():
    data = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    steps = make_training_scheduler().config.num_train_timesteps
    rank0 = prior_batch(data, 16, steps, seed=3, rank=0, step=7)
    again = prior_batch(data, 16, steps, seed=3, rank=0, step=7)
    rank1 = prior_batch(data, 16, steps, seed=3, rank=1, step=7)
    later = prior_batch(data, 16, steps, seed=3, rank=0, step=8)
    assert all(torch.equal(a, b) for a, b in zip(rank0, again, strict=True))  # a resumed run draws the same
    for other in (rank1, later):  # rows, noise and timesteps: all independent draws
        assert all(not torch.equal(a, b) for a, b in zip(rank0, other, strict=True))
