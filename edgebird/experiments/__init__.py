"""``edgebird experiment``: the few-shot protocol, pseudo-labelling and generated reports."""
