"""Process setup shared by the workers: device, backend, rendezvous, CPU threads."""

from __future__ import annotations

import os
import socket


def device_type() -> str:
    """``cuda`` where this process sees a GPU, else ``cpu`` (Ray's logical GPUs on a CPU machine)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def backend_for(device: str) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device == "cuda" else "gloo"


def node_ip() -> str:
    import ray

    return ray.util.get_node_ip_address()


def free_port() -> int:
    """A TCP port free on this node now (the rendezvous of a torch.distributed world)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def limit_cpu_threads(threads: int) -> None:
    """One intra-op thread per worker on CPU: several workers share few cores, and more
    threads than cores per process only thrash."""
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def init_world(rank: int, world_size: int, master_addr: str, master_port: int, device: str) -> None:
    """Join this role's torch.distributed world (every role has its own)."""
    import torch
    import torch.distributed as dist

    if device == "cuda":
        torch.cuda.set_device(0)  # Ray shows each worker only its own GPU
    dist.init_process_group(backend_for(device), init_method=f"tcp://{master_addr}:{master_port}",
                            rank=rank, world_size=world_size)
