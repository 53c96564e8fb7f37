"""The ``systolic`` template: a SCALE-Sim-exact systolic array (see README.md one level up)."""
