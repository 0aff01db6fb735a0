"""edgebird's desktop GUI (Gradio), installed as ``edgebird.gui``; started by ``edgebird gui``.

A thin layer: ``handlers`` turns widget values into the same settings dataclasses the command
line builds and calls the same library functions; ``app`` lays out the tabs.
"""


def launch(**kwargs) -> None:
    from .app import launch as _launch

    _launch(**kwargs)
