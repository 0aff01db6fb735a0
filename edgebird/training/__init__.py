"""``edgebird train``: training folders and annotations, features, cross-validation, metrics,
export of ``.tflite`` classifiers, the report, and review calibration."""
