"""Synthetic but realistic placement worlds for the benchmark: members, node shapes, workloads.

A world is seeded and deterministic. Members sit in 60 countries (the alliance members and the usual
GPU hosting countries, weighted towards the big markets), run by ~40 providers (a few global clouds
present almost everywhere, regional and national ones in a few countries). Each member has ~100 GPU
nodes grouped into a handful of shapes, as `status.gpuInventory` reports them: nodes of one product
and memory size, split by how many GPUs are still free. The alliance table is the built-in one.
"""

from __future__ import annotations

import random

from samizdat.core import jurisdictions
from samizdat.core.placement import GPURequest, MemberInfo, NodeShape, Request, Rules, Snapshot

COUNTRIES = (
    # five/nine/fourteen-eyes, EU and EEA members
    "US", "GB", "CA", "AU", "NZ", "DK", "FR", "NL", "NO", "DE", "BE", "IT", "ES", "SE",
    "AT", "BG", "HR", "CY", "CZ", "EE", "FI", "GR", "HU", "IE", "LV", "LT", "LU", "MT", "PL", "PT",
    "RO", "SK", "SI", "IS", "LI",
    # elsewhere
    "CH", "JP", "KR", "SG", "IN", "BR", "MX", "AR", "CL", "ZA", "KE", "NG", "AE", "SA", "IL",
    "TR", "UA", "TW", "HK", "MY", "ID", "TH", "VN", "UY", "CN",
)  # fmt: skip
BIG_MARKETS = {"US": 8, "DE": 4, "GB": 3, "FR": 3, "JP": 3, "CA": 2, "NL": 2, "SG": 2, "IN": 2, "CH": 2}
PRODUCTS = (("NVIDIA-H100-80GB-HBM3", 81559), ("NVIDIA-H200", 143771), ("NVIDIA-A100-SXM4-80GB", 81920),
            ("NVIDIA-A100-SXM4-40GB", 40960), ("NVIDIA-L40S", 46068))  # fmt: skip
GLOBAL_PROVIDERS = ("aws", "gcp", "azure", "oracle", "coreweave")


def world(seed: int, members: int = 1000, nodes: int = 100_000) -> Snapshot:
    rng = random.Random(seed)
    weights = [BIG_MARKETS.get(country, 1) for country in COUNTRIES]
    regional = [f"regional-{index}" for index in range(35)]
    homes = {provider: rng.sample(COUNTRIES, rng.randint(1, 4)) for provider in regional}
    built = []
    for index in range(members):
        if rng.random() < 0.55:
            provider = rng.choice(GLOBAL_PROVIDERS)
            country = rng.choices(COUNTRIES, weights)[0]
        else:
            provider = rng.choice(regional)
            country = rng.choice(homes[provider])
        built.append(
            MemberInfo(
                name=f"{country.lower()}-{provider}-{index:04d}",
                country=country,
                provider=provider,
                tee=rng.random() < 0.3,
                cost_per_gpu_hour=round(rng.uniform(1.2, 4.5), 2),
                latency_ms=round(rng.uniform(4, 220), 1),
                labels={"tier": rng.choice(("gold", "silver", "bronze"))},
                shapes=_shapes(rng, nodes // members),
                unschedulable_reason="quarantined until 2030-01-01T00:00:00Z" if rng.random() < 0.03 else None,
            )
        )
    return Snapshot(members=tuple(built), alliances=jurisdictions.alliance_table())


def _shapes(rng: random.Random, nodes: int) -> tuple[NodeShape, ...]:
    """~`nodes` nodes of one or two products, split by free GPUs (busy clusters are fragmented)."""
    shapes = []
    products = rng.sample(PRODUCTS, rng.choice((1, 1, 2)))
    left = nodes
    for position, (product, memory) in enumerate(products):
        share = left if position == len(products) - 1 else rng.randint(nodes // 4, 3 * nodes // 4)
        left -= share
        tee = rng.random() < 0.3
        free_counts = rng.sample((0, 1, 2, 4, 8), rng.randint(2, 4))
        for position_free, free in enumerate(free_counts):
            last = position_free == len(free_counts) - 1
            count = share if last else rng.randint(0, share)
            share -= count
            if count:
                shapes.append(NodeShape(product, memory, tee, free, count))
    return tuple(shapes)


def workload(rng: random.Random) -> Request:
    """A workload spec as users write them: a few replicas, strict jurisdiction rules, big GPUs."""
    products = rng.choice((frozenset(), frozenset({"NVIDIA-H100-80GB-HBM3", "NVIDIA-H200"})))
    replicas = rng.choice((2, 3, 4, 4, 6, 8, 12))
    rules = Rules(
        # the CRD rejects more jurisdictions (or providers) than replicas
        min_jurisdictions=min(replicas, rng.choice((1, 2, 3, 3, 4))),
        max_per_jurisdiction=rng.choice((None, 1, 2, 2, 3)),
        max_per_alliance=rng.choice((None, None, 2, 3, 4)),
        max_per_provider=rng.choice((None, None, 2, 3)),
        max_per_cluster=rng.choice((None, 1, 2)),
        min_providers=min(replicas, rng.choice((1, 1, 2, 3))),
        denied_jurisdictions=frozenset(rng.choice(((), ("CN",), ("CN", "HK"), ("US", "CN")))),
        denied_alliances=frozenset(rng.choice(((), (), ("five-eyes",), ("fourteen-eyes",)))),
        require_tee=rng.random() < 0.15,
    )
    return Request(
        replicas=replicas,
        gpu=GPURequest(count=rng.choice((1, 2, 4, 8)), products=products, min_memory_mib=rng.choice((0, 40000))),
        rules=rules,
    )
