"""edgebird's field recorder (installed as ``edgebird.export``): a TensorFlow-free runtime for
a Raspberry Pi that runs a custom classifier on live audio, and the files ``edgebird deploy``
packs into a kit. Depends only on numpy, soundfile, the LiteRT interpreter and (for a live sound
card) sounddevice or ALSA's arecord.
"""
