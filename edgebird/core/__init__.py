"""The kit core: what the desktop tools and the field recorder share, byte for byte.

Scores and detections (``scores``), the result tables (``writers``), atomic files and hashing
(``files``), the parser of labels, thresholds and species lists (``labels``), interpreters
(``runtime``) and quieting native libraries (``quiet``). Python 3.9,
numpy and the standard library only (the LiteRT interpreter is imported when a model is
loaded): ``edgebird deploy`` ships this package unchanged, and an import-linter contract keeps
it from importing anything else of edgebird.
"""

#: BirdNET V2.4's upper band limit (its spectrogram stops at 15 kHz): the default bandpass
#: top, and the cap on every table's "High Freq" column. The one place the number is typed.
BIRDNET_FMAX_HZ = 15000.0
