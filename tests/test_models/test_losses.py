import math

import pytest
import torch
import torch.nn.functional as F

from liftedcl_mm.models.losses import EquivariantInfoNCELoss, InfoNCELoss, LSGANLoss
from liftedcl_mm.registry import MODELS
from liftedcl_mm.testing import reference_equivariant_loss

torch.set_num_threads(1)


def _unit(rows):
    return [[v / math.sqrt(sum(x * x for x in r)) for v in r] for r in rows]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _hand_info_nce(query, key, queue, temperature):
    """Mean over rows of -log softmax(positive) with explicit Python arithmetic."""
    losses = []
    for q, k in zip(_unit(query), _unit(key)):
        logits = [_dot(q, k) / temperature] + [_dot(q, u) / temperature for u in queue]
        top = max(logits)
        lse = top + math.log(sum(math.exp(v - top) for v in logits))
        losses.append(lse - logits[0])
    return sum(losses) / len(losses), losses


QUERY = [[1.0, 2.0, 0.5], [-0.3, 0.4, 2.0]]
KEY = [[0.9, 1.5, 1.0], [1.0, 0.0, 0.2]]
QUEUE = _unit([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [-1.0, 2.0, 0.5], [0.3, -0.2, 0.9]])


# ---------------------------------------------------------------- InfoNCE
def test_info_nce_matches_hand_computation():
    expected, _ = _hand_info_nce(QUERY, KEY, QUEUE, 0.2)
    loss = InfoNCELoss(temperature=0.2, loss_weight=0.5)(
        torch.tensor(QUERY), torch.tensor(KEY), torch.tensor(QUEUE))
    assert loss.shape == ()
    assert loss.item() == pytest.approx(0.5 * expected, rel=1e-5)


def test_info_nce_is_built_from_registry_and_scale_invariant():
    loss_fn = MODELS.build(dict(type='InfoNCELoss', temperature=0.1))
    q, k, queue = torch.tensor(QUERY), torch.tensor(KEY), torch.tensor(QUEUE)
    # Inputs are normalised inside, so rescaling query/key does not change the loss.
    assert loss_fn(3 * q, 0.1 * k, queue).item() == pytest.approx(
        loss_fn(q, k, queue).item(), rel=1e-6)
    assert loss_fn(q, k, queue).item() == pytest.approx(
        _hand_info_nce(QUERY, KEY, QUEUE, 0.1)[0], rel=1e-5)


def test_info_nce_accuracy_on_constructed_case():
    # Row 0: positive identical to the query, beats every negative.
    # Row 1: a queue row equals the query, positive is orthogonal -> wrong.
    # Row 2: positive equals query -> right. Row 3: positive opposite -> wrong.
    query = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    key = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, -1.0]])
    queue = torch.tensor([[0.0, 1.0, 0.0], [0.6, 0.8, 0.0]])
    loss, top1 = InfoNCELoss()(query, key, queue, return_accuracy=True)
    assert top1.item() == pytest.approx(50.0)
    assert not top1.requires_grad
    assert torch.isfinite(loss)


def test_info_nce_gradient_only_to_query_and_survives_inplace_queue_update():
    query = torch.tensor(QUERY, requires_grad=True)
    key = torch.tensor(KEY, requires_grad=True)
    queue = torch.tensor(QUEUE)
    loss = InfoNCELoss()(query, key, queue)
    queue.mul_(-1.0)  # what an enqueue after the loss would do
    loss.backward()
    assert key.grad is None
    assert query.grad is not None and torch.isfinite(query.grad).all()
    # Gradient of the loss as written by hand, by central differences on row 0, column 1.
    eps = 1e-3
    plus = [r[:] for r in QUERY]
    minus = [r[:] for r in QUERY]
    plus[0][1] += eps
    minus[0][1] -= eps
    numeric = (_hand_info_nce(plus, KEY, QUEUE, 0.2)[0] -
               _hand_info_nce(minus, KEY, QUEUE, 0.2)[0]) / (2 * eps)
    assert query.grad[0, 1].item() == pytest.approx(numeric, rel=1e-3, abs=1e-5)


def test_info_nce_under_autocast_computes_in_float32():
    query = torch.tensor(QUERY).bfloat16().requires_grad_()
    key = torch.tensor(KEY).bfloat16()
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        loss = InfoNCELoss()(query, key, torch.tensor(QUEUE))
    loss.backward()
    assert loss.dtype == torch.float32
    assert query.grad.dtype == torch.bfloat16
    rounded = [t.float().tolist() for t in (query.detach(), key)]
    expected, _ = _hand_info_nce(rounded[0], rounded[1], QUEUE, 0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('shapes', [((2, 3), (3, 3), (4, 3)), ((2, 3), (2, 3), (4, 2)),
                                    ((2, 3), (2, 3), (0, 3)), ((6, ), (6, ), (4, 6))])
def test_info_nce_rejects_bad_shapes(shapes):
    q, k, u = (torch.randn(*s) for s in shapes)
    with pytest.raises(ValueError):
        InfoNCELoss()(q, k, u)


def test_info_nce_rejects_bad_temperature():
    with pytest.raises(ValueError, match='temperature'):
        InfoNCELoss(temperature=0.0)


# ------------------------------------------------------- equivariant InfoNCE
def test_reference_equivariant_loss_matches_hand_computation():
    valid = torch.tensor([False, True])
    _, rows = _hand_info_nce(QUERY, KEY, QUEUE, 0.2)
    got = reference_equivariant_loss(torch.tensor(QUERY), torch.tensor(KEY),
                                     torch.tensor(QUEUE), valid, 0.2)
    assert got.item() == pytest.approx(rows[1], rel=1e-5)


def _random_case(num_rows=150, channels=16, queue_len=300, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    query = torch.randn(num_rows, channels, generator=gen, dtype=dtype)
    key = query + 0.7 * torch.randn(num_rows, channels, generator=gen, dtype=dtype)
    queue = F.normalize(torch.randn(queue_len, channels, generator=gen, dtype=dtype), dim=1)
    return query, key, queue


@pytest.mark.parametrize('chunk_size', [1, 7, 64, 150, 1000])
@pytest.mark.parametrize('mask', ['none', 'random', 'all'])
def test_equivariant_chunked_equals_full_logits(chunk_size, mask):
    query, key, queue = _random_case()
    valid = {
        'none': None,
        'random': torch.rand(150, generator=torch.Generator().manual_seed(1)) > 0.4,
        'all': torch.ones(150, dtype=torch.bool)
    }[mask]
    q_ref = query.clone().requires_grad_()
    k_ref = key.clone().requires_grad_()
    expected = reference_equivariant_loss(q_ref, k_ref, queue, valid, 0.2)
    expected.backward()

    q = query.clone().requires_grad_()
    k = key.clone().requires_grad_()
    loss = EquivariantInfoNCELoss(temperature=0.2, chunk_size=chunk_size)(q, k, queue, valid)
    loss.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    torch.testing.assert_close(q.grad, q_ref.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(k.grad, k_ref.grad, rtol=1e-5, atol=1e-6)


def test_equivariant_loss_weight_and_registry():
    query, key, queue = _random_case(num_rows=20)
    loss_fn = MODELS.build(dict(type='EquivariantInfoNCELoss', loss_weight=0.5, chunk_size=8))
    expected = reference_equivariant_loss(query, key, queue, None, 0.2)
    assert loss_fn(query, key, queue).item() == pytest.approx(0.5 * expected.item(), abs=1e-6)


def test_equivariant_gradcheck_float64():
    query, key, queue = _random_case(num_rows=9, channels=4, queue_len=5, dtype=torch.float64)
    query.requires_grad_()
    key.requires_grad_()
    valid = torch.tensor([True, False, True, True, True, False, True, True, True])
    loss_fn = EquivariantInfoNCELoss(temperature=0.3, chunk_size=4)
    assert torch.autograd.gradcheck(lambda q, k: loss_fn(q, k, queue, valid), (query, key))


def test_equivariant_all_invalid_is_zero_and_backward_works():
    query, key, queue = _random_case(num_rows=12)
    query.requires_grad_()
    loss = EquivariantInfoNCELoss(chunk_size=5)(query, key, queue,
                                                torch.zeros(12, dtype=torch.bool))
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert torch.equal(query.grad, torch.zeros_like(query))


def test_equivariant_key_without_grad_gets_none_and_queue_is_constant():
    query, key, queue = _random_case(num_rows=12)
    query.requires_grad_()
    queue.requires_grad_()
    EquivariantInfoNCELoss(chunk_size=5)(query, key, queue).backward()
    assert query.grad is not None
    assert queue.grad is None


def test_equivariant_large_logits_are_finite():
    query, key, queue = _random_case(num_rows=40, channels=8, queue_len=64)
    queue[:10] = F.normalize(query[:10], dim=1)  # negatives identical to queries
    query = (query * 1e4).requires_grad_()
    loss = EquivariantInfoNCELoss(temperature=1e-3, chunk_size=16)(query, key, queue)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(query.grad).all()
    expected = reference_equivariant_loss(query.detach().double(), key.double(),
                                          queue.double(), None, 1e-3)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_equivariant_under_autocast_computes_in_float32():
    query, key, queue = _random_case(num_rows=30)
    q_half = query.bfloat16().requires_grad_()
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        loss = EquivariantInfoNCELoss(chunk_size=8)(q_half, key.bfloat16(), queue)
    loss.backward()
    assert loss.dtype == torch.float32
    assert q_half.grad.dtype == torch.bfloat16
    expected = reference_equivariant_loss(q_half.detach().float(), key.bfloat16().float(),
                                          queue, None, 0.2)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_equivariant_keeps_no_rows_by_negatives_tensor_for_backward():
    """The point of chunking: nothing of size M x K stays alive for the backward pass."""
    num_rows, queue_len = 64, 512
    query, key, queue = _random_case(num_rows=num_rows, queue_len=queue_len)

    def largest_saved(fn):
        sizes = []

        def pack(tensor):
            sizes.append(tensor.numel())
            return tensor

        q = query.clone().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(q)
        return max(sizes)

    naive = largest_saved(lambda q: reference_equivariant_loss(q, key, queue, None, 0.2))
    chunked = largest_saved(lambda q: EquivariantInfoNCELoss(chunk_size=16)(q, key, queue))
    assert naive >= num_rows * queue_len  # the hook does see the full logits of the naive one
    assert chunked <= num_rows * query.shape[1]


def test_equivariant_rejects_bad_inputs():
    query, key, queue = _random_case(num_rows=6)
    with pytest.raises(ValueError, match='valid'):
        EquivariantInfoNCELoss()(query, key, queue, torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match='query and key'):
        EquivariantInfoNCELoss()(query, key[:3], queue)
    with pytest.raises(ValueError, match='queue'):
        EquivariantInfoNCELoss()(query, key, queue[:, :3])
    with pytest.raises(ValueError, match='chunk_size'):
        EquivariantInfoNCELoss(chunk_size=0)


# ------------------------------------------------------------------ LSGAN
def test_lsgan_hand_computed():
    score = torch.tensor([0.5, -1.0, 3.0])
    loss_fn = LSGANLoss(loss_weight=2.0)
    real = ((0.5 - 1)**2 + (-1.0 - 1)**2 + (3.0 - 1)**2) / 3
    fake = (0.5**2 + 1.0**2 + 3.0**2) / 3
    assert loss_fn(score, True).item() == pytest.approx(2.0 * real)
    assert loss_fn(score, False).item() == pytest.approx(2.0 * fake)
    assert loss_fn(score[:, None], True).item() == pytest.approx(2.0 * real)


def test_lsgan_gradient_and_errors():
    score = torch.tensor([[0.25], [2.0]], requires_grad=True)
    MODELS.build(dict(type='LSGANLoss'))(score, True).backward()
    # d/ds mean((s - 1)^2) = 2 (s - 1) / N
    torch.testing.assert_close(score.grad, torch.tensor([[-0.75], [1.0]]))
    with pytest.raises(ValueError, match='score'):
        LSGANLoss()(torch.zeros(3, 2), True)
    with pytest.raises(TypeError, match='target_is_real'):
        LSGANLoss()(torch.zeros(3), 1)
