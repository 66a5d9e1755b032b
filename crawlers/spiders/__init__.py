"""The five spider families; ``SPIDERS`` maps a source ``kind`` to its spider class."""

from __future__ import annotations

from crawlers.spiders.feed import FeedSpider
from crawlers.spiders.generic import GenericSpider
from crawlers.spiders.mastodon import MastodonSpider
from crawlers.spiders.telegram import TelegramSpider
from crawlers.spiders.xenforo import XenForoSpider

SPIDERS = {
    "generic": GenericSpider,
    "xenforo": XenForoSpider,
    "rss": FeedSpider,
    "mastodon": MastodonSpider,
    "telegram": TelegramSpider,
}
