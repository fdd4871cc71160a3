"""Pages rendered ahead: after answering a page, render the one a sequential client asks for next.

The HTTP layer calls :meth:`PagesAhead.render_next` once the reply is on the wire, so rendering
overlaps with the client parsing the page it just got instead of adding to its next wait.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from airflow_provider_unifapi.sandbox.data import PageSource
from airflow_provider_unifapi.sandbox.replies import PrefetchHint

#: Pages kept; a few per concurrent sequential client is enough, older ones are dropped first.
PAGE_CACHE_SIZE = 64


class PagesAhead:
    """Rendered pages keyed by ``(generation, page key, start, positions)``.

    The state's generation is in the key, so a settings or catalogue change never serves a page
    rendered under the old data; the page key is the hashtag id for a static feed and names the
    clock and walk as well in timeline mode, so a walk never gets another walk's page.
    """

    def __init__(self) -> None:
        self._pages: OrderedDict[tuple[int, str, int, int], list[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, generation: int, feed: PageSource, start: int, count: int) -> list[bytes]:
        """The records of positions ``start .. start+count-1``: rendered ahead, or rendered now.

        :param generation: the state generation ``feed`` belongs to.
        :param feed: the hashtag's feed (or timeline walk).
        :param start: first feed position.
        :param count: positions on the page.
        """
        key = (generation, feed.page_key, start, count)
        with self._lock:
            page = self._pages.pop(key, None)
        return page if page is not None else feed.render(start, count)

    def render_next(self, hint: PrefetchHint) -> None:
        """Render the page ``hint`` names, unless it is already waiting.

        :param hint: ``(generation, feed, start, limit, max_credits)`` of the next page.
        """
        generation, feed, start, limit, cap = hint
        count = feed.page_size(start, limit)
        if cap is not None:
            count = min(count, cap)
        key = (generation, feed.page_key, start, count)
        with self._lock:
            if key in self._pages:
                return
        page = feed.render(start, count)
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > PAGE_CACHE_SIZE:
                self._pages.popitem(last=False)
