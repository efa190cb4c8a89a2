"""skyloom core: the contracts every stage shares.

Public names: the corpus contract (:mod:`skyloom.corpus`), the run directory contract
(:mod:`skyloom.rundir`), video I/O (:mod:`skyloom.video`), typed config
(:mod:`skyloom.config`), the plug-in registry (:mod:`skyloom.registry`) and the Ray helper
(:mod:`skyloom.raytools`). Import the submodule you need; this file stays light so that
``skyloom --help`` starts fast.
"""

__version__ = "0.1.0"
