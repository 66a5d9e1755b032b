"""A small synthetic forum served on 127.0.0.1, for demos and end-to-end checks.

Nothing here is real: authors, posts and images are invented, and the risky posts
only *describe* warning signs in words so the pipeline has something to find.
"""

from services.demo_site.server import DemoSite, start_demo_site

__all__ = ["DemoSite", "start_demo_site"]
