"""TwinPortal's twin engine: pure numpy/scipy physiology, calibration, scenarios and risk.

Nothing here imports Django; callers pass plain data in and get plain data back.
Submodules are imported explicitly (``from models_engine import risk``) so importing the
package itself stays cheap.
"""

__all__: list[str] = []
