"""An image field of an admin form: product images, show covers, the shop's logo.

The file is checked with the rest of the form, stored only when the whole form is
valid, and the file it replaces is removed only once the record pointing to the new
one is saved; if saving fails, the new file goes instead. No file is orphaned and none
a record still uses is deleted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from appliance.i18n.forms import Form
from appliance.i18n.translate import _
from appliance.storage.uploads import BadUpload, UploadStore
from appliance.views.web import uploaded_bytes


def upload_error(exc: BadUpload, max_bytes: int, max_pixels: int = 40_000_000) -> str:
    if exc.reason == "too_large":
        return _("Images must be under %(mb)s MB.", mb=round(max_bytes / 1_000_000, 1))
    if exc.reason == "empty":
        return _("The chosen file is empty.")
    if exc.reason == "too_many_pixels":
        return _(
            "Images must be at most %(mp)s megapixels (for instance %(side)s × %(side)s): "
            "make it smaller and upload it again.",
            mp=round(max_pixels / 1_000_000),
            side=int(max_pixels**0.5),
        )
    return _("Upload a JPEG, PNG or WebP image.")


class ImageField:
    def __init__(self, store: UploadStore, form: Form, field: str, current: str | None) -> None:
        self.store = store
        self.form = form
        self.field = field
        self.current = current
        self.data: bytes | None = None
        self.name = current

    @classmethod
    async def read(
        cls, store: UploadStore, form: Form, field: str, current: str | None
    ) -> ImageField:
        """Read and check the uploaded file; a problem is recorded as the field's error."""
        image = cls(store, form, field, current)
        image.data = await uploaded_bytes(field)
        if image.data is not None:
            try:
                store.check(image.data)
            except BadUpload as exc:
                form.error(field, upload_error(exc, store.max_bytes, store.max_pixels))
        return image

    @asynccontextmanager
    async def saving(self) -> AsyncIterator[str | None]:
        """Yields the image name to save with the record (new, kept, or None if removed)."""
        if self.data is not None:
            self.name = await self.store.save(self.data)
        elif self.form.checkbox(f"remove_{self.field}"):
            self.name = None
        try:
            yield self.name
        except BaseException:
            if self.name != self.current:
                await self.store.remove(self.name)
            raise
        if self.name != self.current:
            await self.store.remove(self.current)
