"""samizdat: place AI workloads across member clusters in several jurisdictions and keep them there."""

__version__ = "0.1.0"
