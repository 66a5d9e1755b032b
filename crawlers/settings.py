"""Scrapy settings for harmwatch: project-wide defaults plus the per-source values.

The module-level names are Scrapy's settings module (``SCRAPY_SETTINGS_MODULE``);
:func:`crawler_settings` adds what depends on one source (limits, robots, allow-list)
and on harmwatch's own settings (User-Agent contact, Kafka topic, blob store).
"""

from __future__ import annotations

from typing import Any

from harmwatch.settings import Settings

BOT_NAME = "harmwatch"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

ROBOTSTXT_OBEY = True
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
ROBOTSTXT_USER_AGENT = "harmwatch-crawler"
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
AUTOTHROTTLE_MAX_DELAY = 60.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 2**20
DOWNLOAD_WARNSIZE = 0
RETRY_TIMES = 3
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
REDIRECT_MAX_TIMES = 5
MEDIA_ALLOW_REDIRECTS = True

# Seconds: the longest Retry-After or rate-limit pause honoured before retrying anyway.
HARMWATCH_MAX_PAUSE = 120.0
# Publishing: attempts per post (each on top of the producer's own retries) and the
# back-off between them, in seconds (multiplied by the attempt number).
HARMWATCH_PUBLISH_ATTEMPTS = 3
HARMWATCH_PUBLISH_BACKOFF = 2.0
# Send unchanged posts again at their current version (after a downstream reset).
HARMWATCH_REPUBLISH = False
# Seconds between progress lines on stderr (0 turns them off).
HARMWATCH_PROGRESS_INTERVAL = 5.0

DOWNLOADER_MIDDLEWARES = {
    "crawlers.middlewares.SSRFGuardMiddleware": 50,
    "crawlers.middlewares.HostPauseMiddleware": 560,
}
ITEM_PIPELINES = {
    "crawlers.pipelines.EmptyPostPipeline": 50,
    "crawlers.pipelines.IncrementalPipeline": 100,
    "crawlers.pipelines.BlobMediaPipeline": 200,
    "crawlers.pipelines.SnapshotPipeline": 300,
    "crawlers.pipelines.KafkaPublishPipeline": 900,
}
EXTENSIONS = {
    "crawlers.extensions.Progress": 500,
}
DEFAULT_DROPITEM_LOG_LEVEL = "DEBUG"
LOG_LEVEL = "WARNING"


def user_agent(settings: Settings) -> str:
    """An honest User-Agent: who we are and where a site owner can reach us."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("harmwatch")
    except PackageNotFoundError:
        release = "dev"
    return f"harmwatch-crawler/{release} (+{settings.crawler_contact_url})"


def crawler_settings(source: Any, settings: Settings, job_id: str) -> dict[str, Any]:
    """The Scrapy settings of one source's crawl, on top of this module's defaults."""
    limits = source.limits
    return {
        "HARMWATCH_SETTINGS": settings,
        "HARMWATCH_SOURCE": source,
        "HARMWATCH_JOB_ID": job_id,
        "HARMWATCH_ALLOW_HOSTS": [*settings.crawler_allow_hosts, *source.allow_hosts],
        "USER_AGENT": user_agent(settings),
        "ROBOTSTXT_OBEY": source.obey_robots,
        "CONCURRENT_REQUESTS_PER_DOMAIN": limits.concurrency_per_domain,
        "DOWNLOAD_DELAY": limits.download_delay,
        "AUTOTHROTTLE_START_DELAY": max(limits.download_delay, 0.1),
        "DOWNLOAD_TIMEOUT": limits.download_timeout,
        "DOWNLOAD_MAXSIZE": limits.max_response_size,
        "CLOSESPIDER_ITEMCOUNT": limits.max_posts or 0,
    }
