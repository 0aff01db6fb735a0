"""edgebird: custom bird-song classifiers on BirdNET embeddings, from laptop to field recorder."""

__version__ = "0.1.0"
