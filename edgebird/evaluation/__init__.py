"""``edgebird evaluate``: detections (result tables) against ground truth (annotations).

- ``truth``: annotation tables and "known to lack" lists → recordings, classes, intervals;
  recordings are matched to result tables by file stem and then by folder names.
- ``matching``: the matching rule (one annotation matched once, greedy by score) per
  recording and class, as pure functions.
- ``metrics``: precision, recall, F1, average precision, false positives per hour, the sweep
  and the threshold reaching a target precision, from the matched detections.
- ``report``: ``evaluation.csv`` / ``.json``, ``EVALUATION.md`` and the two plots.
- ``evaluate``: the settings and the command (reading tables, analyzing audio first).
"""
