"""skyloom's YAML presets and evaluation suites, shipped inside the wheel as package data.

``configs/<group>/<name>.yaml`` (group: datagen, caption, model, eval, eval/suites) and the demo
configs; read through :func:`skyloom.config.preset_dirs` with :mod:`importlib.resources`.
"""
