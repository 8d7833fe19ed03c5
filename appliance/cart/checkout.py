"""Checkout links for the in-show cart, by the shop's platform. Pure: no I/O.

The viewer's page keeps the cart (product ids and quantities); at checkout the server
turns it into links to the shop with the catalogue's own data, so a page cannot make up
a variant or a price:

- `shopify`: one cart permalink, `<shop>/cart/<variant>:<qty>,<variant>:<qty>`, which
  fills the shop's cart with every item. The shop is the origin of the cart link template.
- `woocommerce`: WooCommerce adds one product per request (`?add-to-cart=<id>&quantity=`),
  so Vitrine's own page hands the items over one at a time, each with its own link.
- `custom`: the cart link template; `{items}` becomes `<id>:<qty>,<id>:<qty>` (one link
  for the whole cart), else `{sku}` and `{qty}` give one link per item as before.

An item the platform cannot take in the whole-cart link (no variant id for Shopify) gets a
link of its own: its own cart URL, else the template with {sku}/{qty}, else its page.
Every link carries the show's attribution: utm_source=vitrine, utm_campaign=show-<id>
and the viewer (vitrine_v), as the product links do.

A discount code the viewer holds (the show's offer code, or the single-use code they
claimed) is applied at checkout where the platform takes one in a link: Shopify's
whole-cart link becomes `<shop>/discount/<code>?redirect=/cart/<items>?<attribution>`
(the shop applies the code, then fills the cart); a custom template may place it with
`{discount}`. WooCommerce takes no coupon in a link: the viewer types the code there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

PLATFORMS = ("custom", "shopify", "woocommerce")
MAX_LINES = 50
MAX_QUANTITY = 99
MAX_ITEMS_TEXT = 1000
DISCOUNT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # as the offer codes of the live room


class BadCart(ValueError):
    """What is wrong with a cart a page sent, said in the 400."""


@dataclass(frozen=True)
class Line:
    product: int
    quantity: int


@dataclass(frozen=True)
class Item:
    """A cart line with what the catalogue knows of its product."""

    product: int
    quantity: int
    ref: str  # the shop's id for its cart: variant id, else SKU, else ""
    variant_id: str
    link: str  # the product's own add-to-cart URL, if it has one
    page: str = ""  # the product's page, the last resort


@dataclass(frozen=True)
class Handoff:
    """One link to the shop and the products it carries."""

    url: str
    products: tuple[int, ...]


def parse_items(raw: str) -> list[Line]:
    """`"3:2,5:1"` (product id:quantity, comma separated) as lines; the same product twice
    adds up. BadCart says what is wrong."""
    if not raw or len(raw) > MAX_ITEMS_TEXT:
        raise BadCart("items must be product:quantity pairs separated by commas")
    quantities: dict[int, int] = {}
    for pair in raw.split(","):
        product_text, sep, qty_text = pair.partition(":")
        if not sep or not product_text.isdigit() or not qty_text.isdigit():
            raise BadCart("items must be product:quantity pairs separated by commas")
        product, qty = int(product_text), int(qty_text)
        if not 1 <= product <= 2**31 - 1:
            raise BadCart("unknown product id")
        if not 1 <= qty <= MAX_QUANTITY:
            raise BadCart(f"a quantity must be from 1 to {MAX_QUANTITY}")
        quantities[product] = min(MAX_QUANTITY, quantities.get(product, 0) + qty)
    if len(quantities) > MAX_LINES:
        raise BadCart(f"at most {MAX_LINES} products in a cart")
    return [Line(p, q) for p, q in quantities.items()]


def parse_discount(raw: str) -> str:
    """A discount code as a page sent it ("" for none); BadCart when it is not one."""
    if raw and not DISCOUNT_RE.match(raw):
        raise BadCart("a discount code is 1 to 32 letters, digits, - or _")
    return raw


def with_discount(base: str, cart_path: str, code: str) -> str:
    """Shopify's discount link: the shop applies `code`, then goes on to `cart_path`."""
    return f"{base}/discount/{quote(code, safe='')}?redirect={quote(cart_path, safe='/:,')}"


def attributed(url: str, show_id: int, viewer: str) -> str:
    """`url` with the show's attribution; any earlier utm_source, utm_campaign or
    vitrine_v in it is replaced. The rest of the query is kept as written: re-encoding
    it would undo the escaping of the items."""
    parts = urlsplit(url)
    dropped = ("utm_source", "utm_campaign", "vitrine_v")
    query = [
        piece
        for piece in parts.query.split("&")
        if piece and unquote_plus(piece.partition("=")[0]) not in dropped
    ]
    tags = [("utm_source", "vitrine"), ("utm_campaign", f"show-{show_id}")]
    if viewer:
        tags.append(("vitrine_v", viewer))
    query.append(urlencode(tags))
    return urlunsplit(parts._replace(query="&".join(query)))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def _pairs(items: Sequence[Item], use_variant: bool) -> str:
    return ",".join(
        f"{quote(i.variant_id if use_variant else i.ref, safe='')}:{i.quantity}" for i in items
    )


def _one_each(template: str, items: Sequence[Item]) -> list[Handoff]:
    """One link per item: its own cart URL, else the template with {sku} and {qty}, else
    its page."""
    out = []
    for item in items:
        if item.link:
            url = item.link
        elif "{sku}" in template and item.ref:
            url = template.replace("{sku}", quote(item.ref, safe="")).replace(
                "{qty}", str(item.quantity)
            )
        else:
            url = item.page
        if url:
            out.append(Handoff(url, (item.product,)))
    return out


def handoffs(
    platform: str,
    template: str,
    items: Sequence[Item],
    show_id: int,
    viewer: str = "",
    discount: str = "",
) -> list[Handoff]:
    """The links that hand `items` to the shop, in order, each with the attribution (and
    `discount` where the platform applies one from a link). An item with no way to the
    shop (no link at all) is left out."""
    if platform not in PLATFORMS:
        raise ValueError(f"unknown cart platform {platform!r}")
    out: list[Handoff] = []
    rest: list[Item] = list(items)
    filled = template.replace("{discount}", quote(discount, safe=""))
    if platform == "shopify":
        base = _origin(template)
        whole = [i for i in items if i.variant_id]
        if base and whole:
            path = f"/cart/{_pairs(whole, True)}"
            products = tuple(i.product for i in whole)
            if discount:  # attributed inside: the shop keeps only the redirect's query
                url = with_discount(base, attributed(path, show_id, viewer), discount)
                out.append(Handoff(url, products))
            else:
                out.append(Handoff(attributed(base + path, show_id, viewer), products))
            rest = [i for i in items if not i.variant_id]
        return out + _attributed(_one_each(template, rest), show_id, viewer)
    if platform == "custom" and "{items}" in filled:
        whole = [i for i in items if i.ref]
        if whole:
            url = filled.replace("{items}", _pairs(whole, False))
            out.append(Handoff(url, tuple(i.product for i in whole)))
            rest = [i for i in items if not i.ref]
        out += _one_each(filled, rest)
    else:  # woocommerce, and a custom template with {sku}: one item per hand-off
        out += _one_each(filled, rest)
    return _attributed(out, show_id, viewer)


def _attributed(links: list[Handoff], show_id: int, viewer: str) -> list[Handoff]:
    return [Handoff(attributed(h.url, show_id, viewer), h.products) for h in links]
