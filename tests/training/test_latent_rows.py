"""Row-wise Adam on the auto-decoded latent table: equal to torch.optim.Adam on a row alone, absent rows untouched."""
import torch

from qiren_gen.training.latent_rows import LatentTable, exchange_bytes, gather_row_gradients, rowwise_adam_step


class _OneProcess:
    num_processes = 1


def test_a_row_moves_like_torch_adam_on_that_row_alone_counting_only_its_own_steps():
    table = LatentTable(5, 3, torch.Generator().manual_seed(0))
    reference = torch.nn.Parameter(table.latents[2].detach().clone())
    adam = torch.optim.Adam([reference], lr=0.05)
    grads = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    untouched = table.latents[[0, 1, 3]].clone()
    for step, grad in enumerate(grads):
        rowwise_adam_step(table, torch.tensor([2, 4] if step % 2 else [2]), torch.stack([grad, grad])[: 1 + step % 2],
                          lr=0.05)
        reference.grad = grad.clone()
        adam.step()
    torch.testing.assert_close(table.latents[2], reference.detach(), rtol=1e-6, atol=1e-7)
    assert table.row_steps.tolist() == [0, 0, 4, 0, 2]  # bias correction per row: row 4 had 2 steps, not 4
    assert torch.equal(table.latents[[0, 1, 3]], untouched)  # rows absent from every batch never move
    assert not table.exp_avg[[0, 1, 3]].any()


def test_duplicate_rows_add_their_gradients_and_the_exchange_is_small():
    table, twin = LatentTable(4, 2), LatentTable(4, 2)
    twin.load_state_dict(table.state_dict())
    g = torch.tensor([[1.0, -2.0], [0.5, 0.5]])
    rowwise_adam_step(table, torch.tensor([1, 1]), g, lr=0.1)
    rowwise_adam_step(twin, torch.tensor([1]), g.sum(0, keepdim=True), lr=0.1)
    assert torch.equal(table.latents, twin.latents) and table.row_steps[1] == 1
    rows, grads = gather_row_gradients(torch.tensor([3]), g[:1], 8, _OneProcess())
    assert rows.tolist() == [3] and torch.equal(grads, g[:1])
    # a 70,000 x 64 table on 8 ranks of batch 16: 33 KB per step, against 17.9 MB for the whole table
    assert exchange_bytes(8, 16, 64) == 8 * 16 * (8 + 256) < 100_000
