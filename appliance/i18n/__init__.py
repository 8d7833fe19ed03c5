"""Languages and what people type: gettext catalogues, locale choice and formatting
(locales), `_()` for Python code (translate), and form parsing with readable errors (forms).

May use: paths and the standard library, Babel. Nothing else of Vitrine's.
"""
