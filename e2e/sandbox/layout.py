"""The default world: which members exist, where they are, who runs them, and what GPUs they have.

Chosen so that every failure scenario has somewhere to go: the first five members already span four
countries, two of them share a country (DE) and two share an alliance (US and GB, Five Eyes); the sixth
(FR) gives three non-Five-Eyes countries for workloads that deny that alliance. Products mix H100 (some
with confidential computing on), A100 and L40S, and node sizes differ so per-node fit matters.
"""

from __future__ import annotations

from dataclasses import dataclass

# name, GFD product label, memory MiB
H100 = ("NVIDIA-H100-80GB-HBM3", 81559)
A100 = ("NVIDIA-A100-SXM4-40GB", 40960)
A100_80 = ("NVIDIA-A100-SXM4-80GB", 81920)
L40S = ("NVIDIA-L40S", 46068)


@dataclass(frozen=True)
class GPUNodeGroup:
    """`count` identical GPU nodes."""

    count: int
    product: str
    memory_mib: int
    gpus_per_node: int
    confidential: bool = False


@dataclass(frozen=True)
class MemberLayout:
    name: str
    country: str
    region: str
    provider: str
    tee: bool
    cost_per_gpu_hour: float
    latency_ms: float
    node_groups: tuple[GPUNodeGroup, ...]

    @property
    def total_gpus(self) -> int:
        return sum(group.count * group.gpus_per_node for group in self.node_groups)


DEFAULT_MEMBERS: tuple[MemberLayout, ...] = (
    MemberLayout("us-east", "US", "us-east-1", "northwind", False, 2.9, 80,
                 (GPUNodeGroup(2, *H100, 8),)),
    MemberLayout("gb-london", "GB", "eu-west-2", "albion-gpu", False, 3.1, 20,
                 (GPUNodeGroup(2, *A100, 4),)),
    MemberLayout("de-frankfurt", "DE", "eu-central-1", "rhein-compute", True, 3.4, 12,
                 (GPUNodeGroup(2, *H100, 8, confidential=True),)),
    MemberLayout("de-berlin", "DE", "eu-central-2", "hanse-cloud", False, 2.2, 15,
                 (GPUNodeGroup(3, *L40S, 2), GPUNodeGroup(1, *A100_80, 4))),
    MemberLayout("ch-zurich", "CH", "eu-alpine-1", "alpine-ai", True, 3.8, 18,
                 (GPUNodeGroup(2, *H100, 4, confidential=True),)),
    MemberLayout("fr-paris", "FR", "eu-west-3", "seine-gpu", False, 2.6, 14,
                 (GPUNodeGroup(2, *A100_80, 4),)),
    MemberLayout("jp-tokyo", "JP", "ap-northeast-1", "sakura-compute", False, 2.7, 160,
                 (GPUNodeGroup(2, *H100, 8),)),
    MemberLayout("is-reykjavik", "IS", "eu-north-9", "geysir-gpu", True, 2.4, 45,
                 (GPUNodeGroup(2, *H100, 8, confidential=True),)),
)


def members(count: int) -> tuple[MemberLayout, ...]:
    if not 1 <= count <= len(DEFAULT_MEMBERS):
        raise ValueError(f"--members must be between 1 and {len(DEFAULT_MEMBERS)}")
    return DEFAULT_MEMBERS[:count]


def by_name(name: str) -> MemberLayout:
    for member in DEFAULT_MEMBERS:
        if member.name == name:
            return member
    raise KeyError(f"no member named {name!r} in the layout")
