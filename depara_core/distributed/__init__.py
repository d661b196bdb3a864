"""Scale-out: a zoo's graphs computed as Ray tasks that fill a shared content-addressed cache.

Nothing here imports Ray until a cluster is used; without ``ray_address`` the workflows never
touch this package's backend.
"""

from depara_core.distributed.cluster import LocalRayCluster
from depara_core.distributed.ray_runner import GraphJob, fill_cache

__all__ = ["GraphJob", "fill_cache", "LocalRayCluster"]
