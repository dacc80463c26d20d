"""Where a line's REGISTERs go (docs/behaviour.md#reg-targets), sans-IO: IP literals without DNS, the
sticky target first, targets under a 503 Retry-After last, and only what the transport's
gate permits."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sipline.sip.address import ServerAddress
from sipline.sip.reachability import is_ip_literal
from sipline.sip.resolve import Target, literal_target


class TargetChoice:
    def __init__(self, permits: Callable[[str], bool]) -> None:
        self.permits = permits  # the transport's target gate
        self._penalties: dict[Target, float] = {}  # target → end of its 503 Retry-After

    def penalise(self, penalties: Iterable[tuple[Target, float]], now: float) -> None:
        for target, seconds in penalties:
            self._penalties[target] = now + seconds

    def order(self, targets: list[Target], sticky: Target | None, now: float) -> list[Target]:
        """docs/behaviour.md#reg-targets: the sticky target first; targets under a 503 Retry-After last."""
        if len(targets) == 1:
            return targets
        ordered = ([sticky] if sticky in targets else []) + [target for target in targets if target != sticky]
        return sorted(ordered, key=lambda target: self._penalties.get(target, 0) > now)

    def allowed(self, targets: list[Target]) -> list[Target]:
        """The targets the transport's gate lets us send to (it refuses the others anyway)."""
        return [target for target in targets if self.permits(target.address)]


def literal_targets(address: ServerAddress) -> list[Target] | None:
    """The one target of an IP literal; None when the host needs DNS."""
    if not is_ip_literal(address.host):
        return None
    try:
        return [literal_target(address)]
    except ValueError:
        return None
