"""What the app is built from: created by `create_app`, handed to every blueprint."""

from __future__ import annotations

from dataclasses import dataclass, field

from babel.support import NullTranslations

from appliance.accounts.security import SlidingWindowLimiter
from appliance.catalog.shop import Shop, get_shop
from appliance.config import Config
from appliance.hls.admission import HlsAdmission
from appliance.replays.store import ReplayStore
from appliance.storage.db import Database
from appliance.storage.uploads import UploadStore


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
    # The process's budget of HLS answers, shared by every HLS view (host and guest).
    hls_admission: HlsAdmission = field(init=False, repr=False)

    def __post_init__(self) -> None:
        media = self.config.media
        self.hls_admission = HlsAdmission(media.hls_answers_per_second, media.hls_held_requests)

    async def shop(self) -> Shop:
        """The shop settings, cached: every page needs them and they rarely change."""
        if self._shop is None:
            self._shop = await get_shop(self.db)
        return self._shop

    def forget_shop(self) -> None:
        self._shop = None
