"""What the app is built from: created by `create_app`, handed to every blueprint."""

from __future__ import annotations

from dataclasses import dataclass, field

from babel.support import NullTranslations

from appliance.config import Config
from appliance.db import Database
from appliance.replays import ReplayStore
from appliance.security import SlidingWindowLimiter
from appliance.shop import Shop, get_shop
from appliance.uploads import UploadStore


@dataclass
class Services:
    config: Config
    db: Database
    uploads: UploadStore
    translations: dict[str, NullTranslations]
    login_limiter: SlidingWindowLimiter
    setup_token: str
    replays: ReplayStore
    _shop: Shop | None = field(default=None, repr=False)

    async def shop(self) -> Shop:
        """The shop settings, cached: every page needs them and they rarely change."""
        if self._shop is None:
            self._shop = await get_shop(self.db)
        return self._shop

    def forget_shop(self) -> None:
        self._shop = None
