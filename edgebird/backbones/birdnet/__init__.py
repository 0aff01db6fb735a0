"""BirdNET V2.4: the model files (``model``), the numpy front end (``frontend``) and the
flatbuffer rewriting (``graph``) that exposes embeddings and appends heads."""
