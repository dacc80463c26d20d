"""The global helper methods clients call (docs/behaviour.md#rest-helpers); `batch` itself runs in endpoint.py."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sipline.rest.envelope import local_iso
from sipline.rest.errors import RestError
from sipline.rest.params import Params
from sipline.telephony import php_values
from sipline.telephony.caller import Caller
from sipline.telephony.services import Services


class CodeEmpty(RestError):
    code, status, description = "CODE_EMPTY", 400, "CODE can't be empty"


class MethodList:
    """`scope`, `methods` and `method.get` read the registry they are part of."""

    def __init__(self, registry: Mapping[str, Any]) -> None:
        self.registry = registry  # method name → its Method, read at call time

    @property
    def scopes(self) -> dict[str, str | None]:
        """Method name → its scope (None: global)."""
        return {name: method.scope for name, method in self.registry.items()}

    def served_scopes(self) -> list[str]:
        return sorted({scope for scope in self.scopes.values() if scope is not None})

    async def scope(self, params: Params, caller: Caller, services: Services) -> object:
        if php_values.truthy(params.raw("full")):
            return self.served_scopes()
        return sorted(caller.scopes)

    async def methods(self, params: Params, caller: Caller, services: Services) -> object:
        """Global methods and those of the caller's scopes; `scope` narrows ("" = global only), `full` widens."""
        if php_values.truthy(params.raw("full")):
            return sorted(self.scopes)
        wanted = params.optional_str("scope")
        if wanted is not None:
            return sorted(
                name
                for name, scope in self.scopes.items()
                if (scope is None if wanted == "" else scope == wanted.lower() and scope in caller.scopes)
            )
        return sorted(name for name, scope in self.scopes.items() if scope is None or scope in caller.scopes)

    async def method_get(self, params: Params, caller: Caller, services: Services) -> object:
        name = params.optional_str("name") or ""  # the key is case-sensitive [S]
        scope = self.scopes.get(name.lower(), "") if name else ""
        existing = scope != ""
        return {"isExisting": existing, "isAvailable": existing and (scope is None or scope in caller.scopes)}


async def server_time(params: Params, caller: Caller, services: Services) -> object:
    return local_iso(time.time())


async def app_info(params: Params, caller: Caller, services: Services) -> object:
    """OAuth: the application's record; webhook: its scopes (docs/behaviour.md#rest-helpers)."""
    if not caller.app_id:
        return {"SCOPE": sorted(caller.scopes), "LICENSE": "en_selfhosted"}
    app = await services.oauth.app(caller.app_id)
    return {
        "ID": app.id,
        "CODE": app.client_id,
        "VERSION": app.version,
        "STATUS": app.status,
        "INSTALLED": app.active,
        "PAYMENT_EXPIRED": "N",
        "DAYS": None,
        "LANGUAGE_ID": "en",
        "LICENSE": "en_selfhosted",
        "LICENSE_TYPE": "selfhosted",
        "LICENSE_FAMILY": "selfhosted",
    }


async def profile(params: Params, caller: Caller, services: Services) -> object:
    user = await services.accounts.user(caller.portal_id, caller.user_number)
    if user is None or not user.active:
        return []
    return {
        "ID": str(user.number),
        "ADMIN": user.is_admin,
        "NAME": user.name,
        "LAST_NAME": user.last_name,
        "PERSONAL_GENDER": "",
        "TIME_ZONE": "",
        "TIME_ZONE_OFFSET": 0,
    }


async def feature_get(params: Params, caller: Caller, services: Services) -> object:
    """No Bitrix24 feature flags exist here: every code answers "N"."""
    if not params.upper().optional_str("CODE"):
        raise CodeEmpty()
    return {"value": "N"}
