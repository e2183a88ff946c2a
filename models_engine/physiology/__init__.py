"""Mechanistic physiology cores of the twin: glycaemia progression and glucose/HbA1c conversion.

Import the submodules explicitly (``from models_engine.physiology import hss2016, hba1c``); this
package file stays empty so importing it costs nothing.
"""

__all__: list[str] = []
