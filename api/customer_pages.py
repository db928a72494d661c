"""What the customer's own pages (the closeout portal, api/portal/routes.py, and the quote page,
api/quotes/routes.py) have in common: a link's token is the key, so no answer may be cached,
indexed or leak the token through a Referer; each page needs nothing but its own inline CSS (and a
data: image at most); every way a link can be wrong gets the same plain 404; and both pages
extend one layout (api/templates/customer_base.html: head, brand header, shared CSS, footer).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

_SHARED_TEMPLATES = Path(__file__).resolve().parent / "templates"

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
}


def page_headers(form_action: str) -> dict[str, str]:
    """PRIVATE_HEADERS plus a CSP that allows the page's inline CSS and data: images only (no
    scripts, no frames), with `form_action` the sources its forms may post to (`'none'`,
    `'self'`)."""
    return {
        **PRIVATE_HEADERS,
        "Content-Security-Policy": (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            f"frame-ancestors 'none'; base-uri 'none'; form-action {form_action}"
        ),
    }


def plain_page(title: str, text: str) -> str:
    """A page of one paragraph, for answers that show nothing of the job."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head><body><p>{text}</p></body></html>"
    )


def not_found_body(sender: str) -> str:
    """The plain page every bad link gets, the same for every reason; `sender` is whom to ask
    for a new link."""
    return plain_page("Link not valid", f"This link is not valid. Ask {sender} for a new one.")


def templates(page_templates: Path) -> Environment:
    """A page's templates (in `page_templates`) beside the shared customer_base.html."""
    return Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(page_templates), FileSystemLoader(_SHARED_TEMPLATES)]
        ),
        autoescape=True,  # customer, technician and quote text prints as text, never as markup
        undefined=StrictUndefined,
    )
