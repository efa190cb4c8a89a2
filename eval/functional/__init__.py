"""Pure maths of the metrics, no state and no models: arrays in, numbers out (torchmetrics' ``functional``).

Modules:
    frechet      Fréchet distance, Gaussian statistics, polynomial-kernel MMD (FVD, KVD)
    temporal     VBench consistency and flickering, CLIP-Temp, Lai et al.'s warping error, dynamic degree
    physics_iq   Physics-IQ's motion masks, IoUs, physical variance and score
    trajectory   object tracks by colour and the trajectory checks against the simulator
"""
