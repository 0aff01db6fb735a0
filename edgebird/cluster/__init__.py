"""Scale-out: ``--dask`` (``dask``), the only place that imports ``distributed``."""
