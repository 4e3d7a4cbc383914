"""How many replicas of a workload a member can hold: exact per-node GPU fit over its node shapes.

A replica needs all `gpu.count` GPUs on ONE node, so a shape with `free_gpus` free GPUs per node holds
`free_gpus // count` replicas per node: two nodes with two free GPUs each hold no 4-GPU replica.

Convention for `Request.current`: the snapshot's free GPUs are what is left AFTER our currently placed
replicas took theirs. So a member's capacity for the workload is the replicas it runs now plus the new
ones that still fit; the replicas it runs are assumed to keep fitting where they are.
"""

from __future__ import annotations

from samizdat.core.placement.snapshot import GPURequest, MemberInfo, NodeShape, Request


def shape_fits(shape: NodeShape, gpu: GPURequest, require_tee: bool) -> bool:
    """Whether one node of `shape` is the right kind for a replica (ignoring how many GPUs are free)."""
    if gpu.products and shape.product not in gpu.products:
        return False
    if shape.memory_mib < gpu.min_memory_mib:
        return False
    return shape.tee or not require_tee


def new_replicas(member: MemberInfo, gpu: GPURequest, require_tee: bool, ceiling: int) -> int:
    """Replicas that still fit on the member's free GPUs, counted up to `ceiling` (more never matters).

    A request for no GPUs (`count < 1`) fits anywhere, so only the ceiling bounds it.
    """
    if gpu.count < 1:
        return ceiling
    total = 0
    for shape in member.shapes:
        if shape.nodes > 0 and shape.free_gpus >= gpu.count and shape_fits(shape, gpu, require_tee):
            total += shape.nodes * (shape.free_gpus // gpu.count)
            if total >= ceiling:
                return ceiling
    return total


def describe(request: Request) -> str:
    """What one replica needs, e.g. "4× GPU (products H100, ≥80000 MiB, TEE)"."""
    gpu = request.gpu
    details = []
    if gpu.products:
        details.append(f"products {', '.join(sorted(gpu.products))}")
    if gpu.min_memory_mib:
        details.append(f"≥{gpu.min_memory_mib} MiB")
    if request.rules.require_tee:
        details.append("TEE")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{gpu.count}× GPU{suffix}"
