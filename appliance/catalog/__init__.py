"""What the retailer sells and schedules: products, shows and their lifecycle, the shop's
own settings, the catalogue's CSV import/export, calendar files, and the demo shop.

May use: accounts (stream keys), storage, i18n. Never views or media.
"""
