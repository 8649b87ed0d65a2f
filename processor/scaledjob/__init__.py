"""The local KEDA ScaledJob emulator: reads a ScaledJob manifest, polls the lag as KEDA's
redis-streams scaler does, decides how many Jobs to start as KEDA's `accurate` strategy does,
and runs each Job's pod as a local process. A program of its own beside the Job: it shares no
code with `processor`'s Job modules and imports none of them."""
