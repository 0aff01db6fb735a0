"""Audio to results: the engine (worker processes), the batch loop, the embedding store,
``embed``, the model an analysis runs, ``analyze`` and ``segments``."""
