"""pruneflow's packaged configs (installed as ``pruneflow.conf``; Hydra: pkg://pruneflow.conf)."""
