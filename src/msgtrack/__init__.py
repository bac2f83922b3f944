"""msgtrack: Exchange message tracking from any machine.

The package is a library first; :mod:`msgtrack.cli` is one thin user of it.
Data flows one way: sources -> events -> decode/annotate -> filters -> sinks.
"""

__version__ = "0.1.0"
