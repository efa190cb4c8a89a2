"""Running evaluations: suites (``suites``), probes (``probes``), generation (``generate``), scoring
(``scoring``), the runner (``runner``), calibration rows (``calibration``), submissions of outside
videos (``submissions``), the physics ladder (``ladder``) and model adapters (``diffusers_adapter``).

Import the module you need; nothing is imported here, so ``import skyloom.eval.harness`` stays light.
"""
