"""From a Hydra config to trained networks: ``setup`` (the run's objects, fitting them),
``members`` (ensemble members, one after the other or at once), ``callbacks`` (ours, declared
in ``conf/callbacks``) and ``sweep`` (multirun bookkeeping). The one stage that reads a Hydra
config; the others take plain objects."""
