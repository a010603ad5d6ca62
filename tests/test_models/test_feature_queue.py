import pytest
import torch

from liftedcl_mm.models.utils import FeatureQueue
from liftedcl_mm.registry import MODELS

torch.set_num_threads(1)


def _sequential_model(length, batches):
    """A plain ring buffer written one vector at a time (what the queue must be equal to)."""
    slots = [None] * length
    ptr = 0
    for batch in batches:
        for row in batch:
            slots[ptr] = row / row.norm()
            ptr = (ptr + 1) % length
    return slots, ptr


def test_enqueue_wraps_around_for_any_batch_size():
    queue = FeatureQueue(dim=5, length=10)
    initial = queue.queue.clone()
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(n, 5, generator=gen) * 3 for n in (3, 4, 7, 12)]
    expected_ptrs = [3, 7, 4, 6]  # (3), (3+4), (7+7)%10, (4+12)%10
    for i, (batch, ptr) in enumerate(zip(batches, expected_ptrs)):
        queue.enqueue(batch)
        assert queue.ptr.tolist() == [ptr]
        slots, model_ptr = _sequential_model(10, batches[:i + 1])
        assert model_ptr == ptr
        for j, slot in enumerate(slots):
            want = initial[j] if slot is None else slot
            torch.testing.assert_close(queue.queue[j], want)


def test_enqueue_bigger_than_queue_keeps_newest_rows():
    queue = FeatureQueue(dim=2, length=4)
    queue.enqueue(torch.tensor([[1.0, 0.0]]))  # ptr -> 1
    keys = torch.arange(1, 13, dtype=torch.float32).view(6, 2)
    queue.enqueue(keys)
    # Sequential writes from slot 1: rows 0..5 land in slots 1,2,3,0,1,2 -> slots hold
    # rows 3 (slot 0), 4 (slot 1), 5 (slot 2), 2 (slot 3).
    normed = keys / keys.norm(dim=1, keepdim=True)
    torch.testing.assert_close(queue.queue, normed[[3, 4, 5, 2]])
    assert queue.ptr.tolist() == [3]


def test_initial_rows_are_unit_vectors_and_keys_are_normalised():
    queue = MODELS.build(dict(type='FeatureQueue', dim=8, length=6))
    torch.testing.assert_close(queue.queue.norm(dim=1), torch.ones(6))
    queue.enqueue(torch.full((2, 8), 5.0, requires_grad=True))
    torch.testing.assert_close(queue.queue[:2], torch.full((2, 8), 8**-0.5))
    assert not queue.queue.requires_grad


def test_state_dict_holds_queue_and_pointer_and_restores_them():
    queue = FeatureQueue(dim=3, length=7)
    queue.enqueue(torch.randn(5, 3))
    state = queue.state_dict()
    assert set(state) == {'queue', 'ptr'}
    assert state['ptr'].dtype == torch.long
    restored = FeatureQueue(dim=3, length=7)
    restored.load_state_dict(state)
    assert restored.ptr.tolist() == [5]
    torch.testing.assert_close(restored.queue, queue.queue)
    # The restored queue continues exactly like the original.
    more = torch.randn(4, 3)
    queue.enqueue(more)
    restored.enqueue(more)
    torch.testing.assert_close(restored.queue, queue.queue)
    assert restored.ptr.tolist() == queue.ptr.tolist() == [2]


def test_get_returns_a_copy_safe_for_autograd():
    queue = FeatureQueue(dim=4, length=6)
    query = torch.randn(2, 4, requires_grad=True)
    negatives = queue.get()
    logits = query @ negatives.t()
    queue.enqueue(torch.randn(3, 4))  # in place, after the forward
    logits.sum().backward()  # would raise if negatives aliased the buffer
    torch.testing.assert_close(query.grad, negatives.sum(0).expand(2, 4))
    assert not torch.equal(negatives, queue.queue)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='length'):
        FeatureQueue(dim=4, length=0)
    with pytest.raises(ValueError, match=r'\(N, 4\)'):
        FeatureQueue(dim=4, length=3).enqueue(torch.randn(2, 5))


def _enqueue_on_rank(rank, world_size, init_file, out_dir):
    import torch.distributed as torch_dist
    torch_dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                                  world_size=world_size)
    try:
        torch.manual_seed(123)  # same initial queue on every rank, as after DDP broadcast
        queue = FeatureQueue(dim=3, length=8)
        keys = torch.full((3, 3), float(rank + 1))
        keys[:, 0] = torch.arange(3) + 10.0 * rank
        queue.enqueue(keys)
        torch.save({'queue': queue.queue, 'ptr': queue.ptr, 'keys': keys},
                   f'{out_dir}/rank{rank}.pth')
    finally:
        torch_dist.destroy_process_group()


def test_enqueue_gathers_keys_from_all_ranks(tmp_path):
    import torch.multiprocessing as mp
    mp.spawn(_enqueue_on_rank, args=(2, str(tmp_path / 'init'), str(tmp_path)), nprocs=2)
    results = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]
    gathered = torch.cat([results[0]['keys'], results[1]['keys']])
    expected = gathered / gathered.norm(dim=1, keepdim=True)
    for result in results:
        assert result['ptr'].tolist() == [6]
        torch.testing.assert_close(result['queue'][:6], expected)
    torch.testing.assert_close(results[0]['queue'], results[1]['queue'])
