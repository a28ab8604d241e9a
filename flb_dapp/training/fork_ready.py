"""Imported last by the training pool's fork server (``WARM_MODULES``): moves every object the
preloaded libraries created into the collector's permanent generation, so that the workers forked
from the server share those pages with it. Without this the first collection in each worker walks
(and so writes to) every tracked object, and the kernel copies each page it touches."""

from __future__ import annotations

import gc

gc.collect()
gc.freeze()
