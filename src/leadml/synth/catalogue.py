"""The marketing catalogue: web pages, content (blog posts, assets, case studies) and
campaigns, and the campaign, content and URL each emitted event points at.

Examples
--------
>>> CONTENT_IDS[0], URLS[0], len(CONTENT_IDS)
('C0001', '/', 270)
"""

from __future__ import annotations

import numpy as np

from leadml.synth.vocabulary import EVENT_CODE, LEAD_SOURCES
from leadml.synth.world import World

# Content catalogue: blog posts, downloadable assets, case studies (popularity is Zipf-like).
_CONTENT_KINDS = {
    "blog_view": (1, 150),
    "content_download": (151, 230),
    "case_study_view": (231, 270),
}
_N_CONTENT = 270
_PAGES = {
    "page_view": (
        "/",
        "/about",
        "/integrations",
        "/solutions/marketing",
        "/solutions/sales",
        "/solutions/revops",
        "/customers",
        "/resources",
        "/security",
        "/partners",
        "/careers",
        "/blog",
    ),
    "product_page_view": (
        "/product",
        "/product/scoring",
        "/product/analytics",
        "/product/integrations",
        "/product/workflows",
    ),
    "pricing_page_view": ("/pricing",),
    "demo_request": ("/demo",),
    "contact_request": ("/contact",),
    "trial_signup": ("/trial/signup",),
    "consultation_request": ("/consultation",),
    "newsletter_signup": ("/newsletter",),
    "webinar_registration": ("/webinars/register",),
    "ad_click": ("/lp/lead-scoring", "/lp/revops-guide", "/lp/free-trial"),
    "email_click": ("/resources", "/webinars", "/product", "/pricing"),
}
_PAGE_WEIGHTS = {"page_view": np.array([30, 6, 6, 8, 6, 4, 8, 6, 3, 2, 2, 10.0])}
_CAMPAIGN_THEMES = {
    "ad_click": ("search-brand", "search-generic", "social-retargeting", "social-lookalike"),
    "social_engagement": ("social-organic", "social-thought-leadership"),
    "content_download": (
        "content-state-of-revops",
        "content-scoring-playbook",
        "syndication-q-partner",
    ),
}
_THEMES = [t for v in _CAMPAIGN_THEMES.values() for t in v]
_THEME_OFFSET = {k: _THEMES.index(v[0]) for k, v in _CAMPAIGN_THEMES.items()}  # first of each
_NURTURE = ("nurture-welcome", "nurture-education", "nurture-reengagement")


def _catalogue() -> tuple[list[str], list[str], dict[str, np.ndarray], np.ndarray]:
    """Content ids, the URL dictionary, page codes per event type and the URL code per content."""
    content_ids = [f"C{i:04d}" for i in range(1, _N_CONTENT + 1)]
    urls: list[str] = []
    page_codes: dict[str, np.ndarray] = {}
    for etype, pages in _PAGES.items():
        page_codes[etype] = np.arange(len(urls), len(urls) + len(pages))
        urls += pages
    content_url = np.empty(_N_CONTENT, dtype=np.int64)
    topics = [
        "lead-scoring",
        "revops",
        "attribution",
        "abm",
        "pipeline",
        "forecasting",
        "crm-hygiene",
        "intent",
    ]
    prefix = {
        "blog_view": "/blog",
        "content_download": "/resources",
        "case_study_view": "/customers",
    }
    for etype, (lo, hi) in _CONTENT_KINDS.items():
        for i in range(lo, hi + 1):
            content_url[i - 1] = len(urls)
            urls.append(f"{prefix[etype]}/{topics[i % len(topics)]}-{i:04d}")
    return content_ids, urls, page_codes, content_url


CONTENT_IDS, URLS, _PAGE_CODES, _CONTENT_URL = _catalogue()


def event_details(
    rng: np.random.Generator, etype: np.ndarray, t: np.ndarray, source: np.ndarray, world: World
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Campaign, content and URL codes (-1 = null) of each event."""
    n = len(etype)
    month = _month_index(t, world)
    n_months = len(world.month_edges)
    campaign = np.full(n, -1, dtype=np.int16)
    content = np.full(n, -1, dtype=np.int16)
    url = np.full(n, -1, dtype=np.int16)
    # Campaign codes, in the order of ``campaign_names``.
    theme0 = {k: 2 * n_months + offset for k, offset in _THEME_OFFSET.items()}
    mail = np.isin(
        etype, [EVENT_CODE[e] for e in ("email_open", "email_click", "unsubscribe", "email_bounce")]
    )
    nurture = rng.random(n) < 0.4
    campaign[mail] = np.where(
        nurture[mail], 2 * n_months + len(_THEMES) + (month[mail] % len(_NURTURE)), month[mail]
    )
    webinar = np.isin(etype, [EVENT_CODE["webinar_registration"], EVENT_CODE["webinar_attended"]])
    campaign[webinar] = n_months + month[webinar]
    for name in ("ad_click", "social_engagement"):
        sel = etype == EVENT_CODE[name]
        k = len(_CAMPAIGN_THEMES[name])
        campaign[sel] = theme0[name] + rng.integers(0, k, sel.sum())
    dl = (etype == EVENT_CODE["content_download"]) & (rng.random(n) < 0.5)
    syndicated = dl & (source == LEAD_SOURCES.index("content_syndication"))
    campaign[dl] = theme0["content_download"] + rng.integers(0, 2, dl.sum())
    campaign[syndicated] = theme0["content_download"] + 2

    for name, (lo, hi) in _CONTENT_KINDS.items():
        sel = np.flatnonzero(etype == EVENT_CODE[name])
        rank = _zipf_index(rng, hi - lo + 1, len(sel))
        content[sel] = lo - 1 + rank
        url[sel] = _CONTENT_URL[lo - 1 + rank]
    for name, codes in _PAGE_CODES.items():
        sel = np.flatnonzero(etype == EVENT_CODE[name])
        w = _PAGE_WEIGHTS.get(name, np.ones(len(codes)))
        url[sel] = codes[rng.choice(len(codes), len(sel), p=w / w.sum())]
    return campaign, content, url


def _month_index(t: np.ndarray, world: World) -> np.ndarray:
    """Calendar month of a time in days, counted from the month that contains day 0."""
    return np.searchsorted(world.month_edges, t, side="right") - 1


def _zipf_index(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    w = 1.0 / np.arange(1, k + 1) ** 1.1
    return rng.choice(k, size, p=w / w.sum())


def campaign_names(world: World) -> list[str]:
    """Campaign dictionary: a newsletter and a webinar per month, the themes, the nurture tracks
    (the codes of ``event_details``)."""
    return (
        [f"newsletter-{m}" for m in world.month_labels]
        + [f"webinar-{m}" for m in world.month_labels]
        + _THEMES
        + list(_NURTURE)
    )
