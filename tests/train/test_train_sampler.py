"""The seeded sharded sampler: permutations, shards that union to the global batch, mid-epoch starts."""

import pytest
import torch

from vecfield.train.sampler import ShardedEpochSampler


def batches(sampler: ShardedEpochSampler) -> list[list[int]]:
    indices = list(sampler)
    b = sampler.local_batch_size
    return [indices[i : i + b] for i in range(0, len(indices), b)]


def test_an_epoch_is_a_seeded_permutation_with_the_remainder_dropped():
    sampler = ShardedEpochSampler(num_samples=23, global_batch_size=5, seed=3)
    first = list(sampler)
    assert len(first) == len(sampler) == 20 and sampler.batches_per_epoch == 4
    assert sorted(sampler.epoch_order(0).tolist()) == list(range(23))
    assert first == sampler.epoch_order(0)[:20].tolist()
    assert first == list(ShardedEpochSampler(23, 5, seed=3))  # same seed, same order
    sampler.set_position(1, 0)
    assert list(sampler) != first  # a new order each epoch
    assert list(ShardedEpochSampler(23, 5, seed=3, shuffle=False)) == list(range(20))


@pytest.mark.parametrize("world_size", [2, 3])
def test_shards_union_to_the_single_process_global_batch(world_size):
    n, global_batch = 50, 6
    single = batches(ShardedEpochSampler(n, global_batch, seed=7))
    shards = [batches(ShardedEpochSampler(n, global_batch, seed=7, rank=r, world_size=world_size))
              for r in range(world_size)]
    assert all(len(shard) == len(single) == n // global_batch for shard in shards)
    for k, global_indices in enumerate(single):
        union = sorted(i for shard in shards for i in shard[k])
        assert union == sorted(global_indices)


def test_set_position_continues_the_same_epoch_order_mid_epoch():
    sampler = ShardedEpochSampler(40, 8, seed=1, rank=1, world_size=2)
    sampler.set_position(2, 0)
    full = batches(sampler)
    sampler.set_position(2, 3)
    assert batches(sampler) == full[3:]
    assert len(sampler) == 2 * 4
    with pytest.raises(ValueError, match="outside an epoch of 5 batches"):
        sampler.set_position(0, 5)


def test_invalid_sharding_is_explained():
    with pytest.raises(ValueError, match="choose a multiple of 4"):
        ShardedEpochSampler(100, 6, seed=0, world_size=4)
    with pytest.raises(ValueError, match="fewer than one batch"):
        ShardedEpochSampler(3, 4, seed=0)
    assert torch.equal(ShardedEpochSampler(10, 2, seed=0, shuffle=False).epoch_order(5), torch.arange(10))
