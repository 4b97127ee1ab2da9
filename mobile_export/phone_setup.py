"""A collector's phone set-up (token, Collect settings, QR text): moved to ``core.phone_setup`` so the
server's web pages can issue codes too; the names stay importable from here."""

from rasoat.core.phone_setup import (  # noqa: F401 - re-exported
    ADMIN_PW_KEY,
    ENV_PUBLIC_URL,
    KV_NAMESPACE,
    PhoneCode,
    admin_password,
    base_url,
    check_token,
    phone_code,
    place_name,
    rotate_token,
)
