"""After each KPI window, ask the diagnostics service to diagnose the loops below threshold."""

from __future__ import annotations

import logging

import httpx

from clpm_kpi_worker.windows import KpiWindow

log = logging.getLogger("clpm_kpi_worker.diagnostics_trigger")


class DiagnosticsTrigger:
    """POSTs ``{loop_ids, start, end, trigger}`` to ``DIAG_SERVICE_URL/diagnose/batch``."""

    def __init__(
        self, base_url: str, timeout_s: float = 30.0, headers: dict[str, str] | None = None
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers
        )

    async def __call__(self, window: KpiWindow, loop_ids: list[str]) -> None:
        body = {
            "loop_ids": loop_ids,
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "trigger": "kpi_cycle",
        }
        try:
            response = await self.client.post("/diagnose/batch", json=body)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning(
                "diagnostics service did not take the batch; the loops stay undiagnosed "
                "until the next cycle or an on-demand run",
                extra={"loops": len(loop_ids), "error": str(exc)},
            )
            return
        log.info("diagnostics requested", extra={"loops": len(loop_ids)})

    async def close(self) -> None:
        await self.client.aclose()
