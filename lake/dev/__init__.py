"""Developer tools that do not ship to an Airflow deployment: the local demo (:mod:`.demo`:
localaws + Airflow standalone, provision, replay, backfill) and the synthetic big-day generator
(:mod:`.synth`)."""
