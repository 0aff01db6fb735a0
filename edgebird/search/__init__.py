"""``edgebird search``: query by example over an embedding store.

A query (clips, or time ranges of recordings) is embedded with the store's backbone and audio
settings, averaged and L2-normalised; the store's windows are ranked by cosine similarity.

* ``query``: parsing ``file.wav:12.5-15.5`` and embedding the query windows (the engine's
  ``run_task``, the model the store was made with, checked by fingerprint);
* ``scan``: which entries can be compared (same model and bandpass), the exact search
  (chunked matrix products over streamed entries, a running capped top-k: ``TopK``) and
  ``StoreMatrix`` (the store in memory, float16 or float32, for many queries);
* ``index``: the optional approximate index (usearch), cached beside the store;
* ``run``: ``SearchSettings`` and ``search`` (what the CLI calls), the results table, clips
  and training folders.
"""

from edgebird.search.run import SearchResult, SearchSettings, search, write_clips, write_table
from edgebird.search.scan import StoreMatrix, TopK, exact_search

__all__ = ["SearchResult", "SearchSettings", "StoreMatrix", "TopK", "exact_search", "search",
           "write_clips", "write_table"]
