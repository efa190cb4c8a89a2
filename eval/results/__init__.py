"""What evaluations leave behind: the results store (``store``), statistics and verdicts (``stats``),
leaderboards with calibration flags and score breakdowns (``boards``).

Import the module you need; nothing is imported here.
"""
