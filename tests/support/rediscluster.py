"""The local Redis Cluster of the tests: loadtest/rediscluster.py's (3 masters, 3 replicas),
which the shard benchmark starts too."""

from __future__ import annotations

from loadtest.rediscluster import ClusterError, ClusterNode, LocalCluster

__all__ = ["ClusterError", "ClusterNode", "LocalCluster"]
