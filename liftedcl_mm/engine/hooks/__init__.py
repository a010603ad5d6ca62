# Each module registers itself on import; add one import line per new module.
