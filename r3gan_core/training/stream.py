"""The shared batch stream: every random draw that decides a batch, identical on every rank."""

from __future__ import annotations

import torch
from torch import Tensor


def to_device(t: Tensor, device: torch.device | str) -> Tensor:
    """A host tensor (a draw of the stream) on `device` without making the host wait.

    On CUDA a plain `.to(device)` of pageable memory ends in a stream synchronisation: the host would wait for
    every kernel queued so far, once per draw and step. A pinned copy with non_blocking=True is queued like a
    kernel instead (the caching host allocator keeps the pinned buffer until the copy has run). Elsewhere:
    `.to(device)`.
    """
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class BatchStream:
    """Random draws for the global batch, identical on every rank (one generator seeded with `seed`).

    Each draw is made for `global_n` rows and the rank keeps its contiguous slice, so the union over ranks is
    what one process with the whole batch draws. The stream lives on the CPU so that a CUDA run and a CPU
    run see the same numbers.
    """

    def __init__(self, seed: int, rank: int, world_size: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.rank, self.world_size = rank, world_size

    def _mine(self, t: Tensor) -> Tensor:
        n = t.shape[0] // self.world_size
        return t[self.rank * n:(self.rank + 1) * n]

    def indices(self, global_n: int, num_items: int) -> Tensor:
        return self._mine(torch.randint(num_items, (global_n,), generator=self.gen))

    def normal(self, global_n: int, *shape: int) -> Tensor:
        return self._mine(torch.randn((global_n, *shape), generator=self.gen))

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.gen))

    def integer(self, low: int, high: int) -> int:
        """Uniform in [low, high)."""
        return int(torch.randint(low, high, (), generator=self.gen))

    def state(self) -> Tensor:
        return self.gen.get_state()

    def set_state(self, state: Tensor) -> None:
        self.gen.set_state(state.cpu())
