"""Names compared as they look: a confusable skeleton in the spirit of Unicode TR39.

`Hаna Host` with a Cyrillic `а`, `Аdmin` and `M0derator` must not pass for staff names.
`skeleton` maps a name to a prototype: compatibility forms and accents are taken apart
(NFKD) and the marks dropped, letters that look alike in Latin, Cyrillic and Greek map to
one Latin letter, digits to the letters they imitate, and `i`, `l`, `1` and `|` become
one; case, spaces and punctuation are ignored. Two names with the same skeleton look the
same to a viewer. The table is small and written for Vitrine (the scripts a European
shop's viewers type), not Unicode's full data: a rare script's look-alike is not caught,
and the comparison errs on the side of refusing a name too close to staff.
"""

from __future__ import annotations

import unicodedata

# Capitals whose look differs from their lower case (Greek Eta looks like H, eta like n):
# mapped before case folding.
_UPPER = {
    "Η": "h",  # Greek Eta
    "Ν": "n",  # Greek Nu
    "Ρ": "p",  # Greek Rho
    "Β": "b",  # Greek Beta
    "Μ": "m",  # Greek Mu
    "Τ": "t",  # Greek Tau
    "Χ": "x",  # Greek Chi
    "Κ": "k",  # Greek Kappa
    "Ζ": "z",  # Greek Zeta
    "Ι": "l",  # Greek Iota
    "Υ": "y",  # Greek Upsilon
    "В": "b",  # Cyrillic Ve
    "Н": "h",  # Cyrillic En
    "М": "m",  # Cyrillic Em
    "Т": "t",  # Cyrillic Te
    "К": "k",  # Cyrillic Ka
    "П": "n",  # Cyrillic Pe, close enough to a wide n
}

# Lower case (and caseless) look-alikes, after case folding.
_LOWER = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "г": "r",
    "һ": "h",
    "н": "h",
    "і": "l",
    "ї": "l",
    "ј": "j",
    "к": "k",
    "ӏ": "l",
    "м": "m",
    "о": "o",
    "п": "n",
    "р": "p",
    "с": "c",
    "ѕ": "s",
    "т": "t",
    "у": "y",
    "ү": "y",
    "х": "x",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "ь": "b",
    "ѡ": "w",
    "ɡ": "g",
    # Greek
    "α": "a",
    "β": "b",
    "γ": "y",
    "ε": "e",
    "η": "n",
    "ι": "l",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "σ": "o",
    "ς": "c",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ω": "w",
    "ϲ": "c",
    "ϳ": "j",
    # Latin letters NFKD does not take apart
    "ı": "l",
    "ł": "l",
    "ø": "o",
    "đ": "d",
    "ħ": "h",
    "ɑ": "a",
    "ɩ": "l",
    "ʏ": "y",
    "ᴅ": "d",
    # i, l and what imitates them are one letter
    "i": "l",
    "|": "l",
    "!": "l",
    # digits and signs that imitate letters
    "0": "o",
    "1": "l",
    "2": "z",
    "3": "e",
    "4": "a",
    "5": "s",
    "6": "b",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
}

# Letter pairs read as one letter once the rest is mapped.
_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def skeleton(name: str) -> str:
    """The prototype a name is compared by: equal skeletons look alike."""
    decomposed = unicodedata.normalize("NFKD", name)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.category(ch).startswith("M"):
            continue  # accents: é is e
        if ch in _UPPER:
            out.append(_UPPER[ch])
            continue
        for low in ch.casefold():
            mapped = _LOWER.get(low, low)
            if mapped.isalnum():
                out.append(mapped)
    text = "".join(out)
    for pair, single in _PAIRS:
        text = text.replace(pair, single)
    return text
