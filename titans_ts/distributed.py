"""What a run on several processes (Lightning DDP) needs from our code: samplers that shard by rank, sums
reduced across ranks, and one process that writes files.

Lightning's own distributed sampler pads every rank to the same number of samples, which would score
some validation windows twice; ours pads only the training shards (every rank must take the same number
of steps) and splits validation exactly. On one process the samplers draw exactly what PyTorch's
RandomSampler / SequentialSampler draw, so single-process results do not change.
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import Sampler


def rank_and_world() -> tuple[int, int]:
    """(global rank, world size) of this process: (0, 1) outside a distributed run."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", os.environ.get("GLOBAL_RANK", 0))), int(os.environ.get("WORLD_SIZE", 1))


def is_main_process() -> bool:
    """True on rank 0 (or when there is one process): the one that writes files and prints results.

    Also right after a launcher started this process as another rank, before the process group exists
    (Lightning's DDP re-runs the command with LOCAL_RANK / NODE_RANK set)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return all(int(os.environ.get(name, 0)) == 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def launcher_problems(devices, num_nodes) -> list[str]:
    """A process that a launcher (torchrun) started as one of more processes than the run asks for: with
    devices=1 each would train a model of its own on its share of the data, all saving to one folder, without
    a word. Lightning's own DDP starts its ranks with WORLD_SIZE = devices x num_nodes, which passes."""
    from titans_ts.errors import is_integer

    world = int(os.environ.get("WORLD_SIZE", 1))
    grouped = torch.distributed.is_available() and torch.distributed.is_initialized()  # ranks already joined
    if world <= 1 or grouped or not is_integer(devices) or not is_integer(num_nodes):
        return []
    if devices * num_nodes == world:
        return []
    return [
        f"this process is one of {world} that a launcher started (WORLD_SIZE={world}, torchrun), but the run asks "
        f"for devices={devices} x num_nodes={num_nodes}: give devices per machine x machines = {world}, with "
        "strategy='ddp', so that they train one model together, or start it without the launcher"
    ]


class ShardedSampler(Sampler[int]):
    """Indices 0..n-1, shuffled by `generator` (as RandomSampler) or in order, then this rank's share:
    every world-th index from its rank. pad=True (training) repeats the first indices so that every rank
    gets the same count; pad=False (evaluation) counts every index exactly once over all ranks.
    shard=False: every index on every rank (a loader read outside the Trainer, e.g. for predictions)."""

    def __init__(
        self, n: int, shuffle: bool = False, generator: torch.Generator | None = None, pad: bool = True, shard=True
    ):
        self.n, self.shuffle, self.generator, self.pad, self.shard = n, shuffle, generator, pad, shard

    def _world(self) -> tuple[int, int]:
        return rank_and_world() if self.shard else (0, 1)

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        order = torch.randperm(self.n, generator=self.generator).tolist()
        torch.randperm(self.n, generator=self.generator)  # RandomSampler draws a second, unused permutation
        return order

    def __iter__(self):
        order = self._order()
        rank, world = self._world()
        if world > 1:
            if self.pad:
                total = -(-self.n // world) * world
                order = order + order[: total - self.n]
            order = order[rank::world]
        return iter(order)

    def __len__(self) -> int:
        rank, world = self._world()
        if world == 1:
            return self.n
        return -(-self.n // world) if self.pad else len(range(rank, self.n, world))


class ShardedBatches(Sampler[list[int]]):
    """A fixed list of batches (e.g. length buckets), every world-th one from this rank's, padded with the
    first batches so that every rank takes the same number of steps."""

    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __iter__(self):
        rank, world = rank_and_world()
        batches = self.batches
        if world > 1:
            total = -(-len(batches) // world) * world
            batches = (batches + batches[: total - len(batches)])[rank::world]
        return iter(batches)

    def __len__(self) -> int:
        world = rank_and_world()[1]
        return -(-len(self.batches) // world)


def sum_across_ranks(module, sums: torch.Tensor) -> torch.Tensor:
    """Per-rank sums (on the module's device) summed over all ranks; unchanged on one process."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None or trainer.world_size == 1:
        return sums
    return trainer.strategy.reduce(sums, reduce_op="sum")
