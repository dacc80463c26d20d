"""The providers a caller's cloud lines register with (docs/behaviour.md#providers), pure: the lines
grouped by next hop, counted by status, with the newest error and the breaker's stored state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sipline.sip.address import provider_name
from sipline.store.records import BreakerState, Line, ProviderState, Registration, StatusChange, StatusResult

# docs/behaviour.md#providers: a provider several `sip` workers report on shows the most severe state
SEVERITY = {BreakerState.CLOSED: 0, BreakerState.RECOVERING: 1, BreakerState.OPEN: 2}


@dataclass
class Provider:
    name: str  # host[:port] of the next hop
    lines: int = 0
    by_status: dict[StatusResult, int] = field(default_factory=lambda: dict.fromkeys(StatusResult, 0))
    last_error: StatusChange | None = None
    breaker: BreakerState = BreakerState.CLOSED
    breaker_since: float | None = None  # None: no `sip` process has reported on it


def providers_of(
    rows: Sequence[tuple[Line, Registration]],
    errors: Mapping[int, StatusChange],
    states: Sequence[ProviderState],
) -> list[Provider]:
    """One entry per provider of `rows`, by name; `errors` by line id; `states` one per provider and worker."""
    found: dict[str, Provider] = {}
    for line, registration in rows:
        name = provider_name(line.server, line.outbound_proxy)
        provider = found.get(name)
        if provider is None:
            provider = found[name] = Provider(name)
        provider.lines += 1
        provider.by_status[registration.status_result] += 1
        error = errors.get(line.id)
        if error is not None and (provider.last_error is None or error.at > provider.last_error.at):
            provider.last_error = error
    for state in states:
        provider = found.get(state.provider)
        if provider is None:
            continue  # not the caller's
        worse = SEVERITY[state.state] > SEVERITY[provider.breaker] or provider.breaker_since is None
        if worse or (state.state is provider.breaker and state.since < provider.breaker_since):  # type: ignore[operator]
            provider.breaker, provider.breaker_since = state.state, state.since
    return [found[name] for name in sorted(found)]
