"""Several processes (torchrun, or torch.multiprocessing with a process group) in one place.

Design (the trainer relies on each point):

* Networks are built from the same seed on every rank, then broadcast from rank 0 anyway.
* Gradients are averaged by one explicit all-reduce after each backward (`all_reduce_grads`), not by a
  DistributedDataParallel wrapper: R1/R2 take a gradient of D's output with respect to its input and then
  backpropagate through it (a double backward), and D runs several forwards (reals, fakes) before one
  backward; DDP's bucketed hooks assume one forward per backward. One flat all-reduce per phase is simple,
  exact and the same on CPU (gloo) and GPU (nccl). StyleGAN3, EDM and the official R3GAN code do the same
  (StyleGAN2-ADA wraps G and D in DDP instead).
* Every loss is a mean over the local batch and every rank holds the same number of samples, so the average
  of the ranks' gradients is the gradient of the mean over the global batch.
* `is_main` gates every side effect (files, progress bar, printing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..report import pick_device


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # True when setup() created the process group (and teardown() must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistEnv:
    """Join the process group torchrun describes (WORLD_SIZE > 1) or one that already exists; else 1 process.

    Backend: nccl when the device is CUDA, gloo otherwise. On CUDA each rank takes GPU LOCAL_RANK.
    """
    owns = False
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        wants_cuda = pick_device(device).type == "cuda"
        dist.init_process_group(backend="nccl" if wants_cuda else "gloo")
        rank, world, owns = dist.get_rank(), dist.get_world_size(), True
    else:
        rank, world = 0, 1
    dev = pick_device(device)
    if dev.type == "cuda" and world > 1 and dev.index is None:
        local_rank = int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1)))
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        if dev.index is None:  # plain "cuda": the current GPU, named by index (set_device needs one)
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
    return DistEnv(rank=rank, world_size=world, device=dev, owns_group=owns)


def teardown(env: DistEnv) -> None:
    if env.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_module(module: torch.nn.Module, env: DistEnv) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not env.active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def all_reduce_grads(params: list[torch.nn.Parameter], env: DistEnv) -> None:
    """Average the .grad of `params` over ranks in one flat all-reduce (params without a grad are skipped;
    every rank runs the same code path, so the same ones are None everywhere)."""
    if not env.active:
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= env.world_size
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def mean_over_ranks(values: dict[str, float], env: DistEnv) -> dict[str, float]:
    """Average a dict of floats over ranks (same keys on every rank)."""
    if not env.active or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device(env))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    t /= env.world_size
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def all_ranks(flag: bool, env: DistEnv) -> bool:
    """True only if `flag` is True on every rank (so every rank stops together)."""
    if not env.active:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device(env))
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def mean_tensor(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """The mean of a tensor over ranks (a new tensor; the input is left alone)."""
    if not env.active:
        return t
    t = t.detach().clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / env.world_size


def gather_objects(obj, env: DistEnv) -> list:
    """Every rank's `obj`, in rank order (a one-element list in one process)."""
    if not env.active:
        return [obj]
    out = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def _comm_device(env: DistEnv) -> torch.device:
    return env.device if dist.get_backend() == "nccl" else torch.device("cpu")
