"""The node-exporter charm's options, validated where they are parsed (no ops here)."""

from __future__ import annotations

import dataclasses
import json

from node_exporter import flags


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeExporterConfig:
    """The charm's config options, validated; each error names the option and the value."""

    port: int = 9100
    collectors: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        # Ports below 1024 work: exporter.allow_low_ports gives the service the capability.
        if not 0 < self.port < 65536:
            raise ValueError(f"port: {self.port} is not a port number (1-65535)")
        try:
            flags.parse_collectors(self.collectors)
        except flags.InvalidError as e:
            raise ValueError(f"collectors: {e}") from None
        if self.log_level not in flags.LOG_LEVELS:
            raise ValueError(
                f"log-level: {json.dumps(self.log_level)} is not one of"
                f" {', '.join(flags.LOG_LEVELS)}"
            )

    @property
    def switches(self) -> dict[str, bool]:
        """The collectors to switch on (True) or off (False)."""
        return flags.parse_collectors(self.collectors)

    @property
    def args(self) -> list[str]:
        """The exporter's command-line flags for these options."""
        return flags.render(port=self.port, collectors=self.switches, log_level=self.log_level)
