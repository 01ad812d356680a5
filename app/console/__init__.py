"""The authority's console (``/console``): queues with counts and the pages where decisions are taken."""
