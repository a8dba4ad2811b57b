"""The shared charm library is tested from the owner charm's lib directory."""

import pathlib
import sys

LIB = pathlib.Path(__file__).parents[3] / "charms" / "prometheus" / "lib"
sys.path.insert(0, str(LIB))
