"""harmwatch's crawlers: a Scrapy project that turns public sources into ``posts.raw``.

Spiders (``crawlers.spiders``) only parse; everything else is a small, swappable
component: downloader middlewares for safety and politeness (``crawlers.middlewares``),
item pipelines for incremental state, media, snapshots and Kafka (``crawlers.pipelines``).
"""
