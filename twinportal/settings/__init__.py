"""Settings: ``base`` holds what every environment shares; ``demo``, ``test`` and ``production`` extend it."""
