"""warroom: an incident-response engine."""

import os

# Polars allocates through jemalloc, which by default keeps freed pages for 10 s in the arena that
# freed them. With analysis threads taking turns over a large bundle, that retention (not live
# data) set the peak memory; pages are returned within half a second instead. This must be set
# before Polars is first imported; a value already in the environment wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0")
