"""Classifier heads on fixed features, behind one estimator interface (``base.Head``).

Every head follows scikit-learn's conventions and gives per-class scores in [0, 1] whose
decision point is 0.5; exportable heads also give their dense layers (logits), which is all
``edgebird train`` needs to write a ``.tflite``. Importing this package registers every head
in ``HEADS`` (in this order):

- ``linear``: ``logreg``, ``svm-linear`` (exportable), ``svm-rbf`` (scikit-learn);
- ``anchored``: ``anchored`` (exportable; logistic regression anchored to BirdNET's own
  classifier for its species);
- ``dense``: ``dense``, ``dense-mixup`` (Keras, exportable; the only TensorFlow import);
- ``neighbours``: ``knn``, ``prototype`` (numpy).
"""

from edgebird.heads.base import (
    HEADS,
    Head,
    NotExportableError,
    exportable_heads,
    head_logits,
    make_head,
    params_of,
    sigmoid,
)

# The import order is the registry order (``--heads all``, the experiment tables):
# isort: off
from edgebird.heads.linear import LinearSVMHead, LogisticHead, RBFSVMHead
from edgebird.heads.anchored import AnchoredLogisticHead
from edgebird.heads.dense import DenseHead, MixupDenseHead
from edgebird.heads.neighbours import KNNHead, PrototypeHead
# isort: on

#: Heads that need TensorFlow.
KERAS_HEADS = tuple(n for n, cls in HEADS.items() if issubclass(cls, DenseHead))

__all__ = ["HEADS", "KERAS_HEADS", "AnchoredLogisticHead", "DenseHead", "Head", "KNNHead",
           "LinearSVMHead", "LogisticHead", "MixupDenseHead", "NotExportableError", "PrototypeHead",
           "RBFSVMHead", "exportable_heads", "head_logits", "make_head", "params_of",
           "sigmoid"]
