"""``/reports``: the daily / weekly fleet report as PDF or XLSX, and the caller's e-mail
subscriptions to it.

Downloading needs ``viewer``; subscriptions are the caller's own and need ``engineer`` (or
``admin``): another user's subscription answers 404 as an unknown id. The report is built from
the stored period ratings (``loop_assessments``), the fleet trend, KPI means and work items
(:func:`clpm_shared.reports.gather.gather_fleet_report`) and rendered in a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from clpm_api_gateway.dependencies import ResourcesDep, SessionDep
from clpm_api_gateway.problems import PROBLEM_401, PROBLEM_422, PROBLEM_503
from clpm_api_gateway.routes_loops import AreaQuery, UnitQuery
from clpm_api_gateway.security import EngineerPrincipal, require_role
from clpm_shared.db.models import ReportSubscription
from clpm_shared.db.repositories.reports import (
    ReportDeliveryRepository,
    ReportSubscriptionRepository,
)
from clpm_shared.reports.gather import gather_fleet_report
from clpm_shared.reports.pdf import render_pdf
from clpm_shared.reports.xlsx import render_xlsx
from clpm_shared.web.problems import TYPE_NOT_FOUND, ProblemError

router = APIRouter(
    prefix="/reports",
    tags=["reports"],
    dependencies=[Depends(require_role("viewer"))],
    responses={**PROBLEM_401, **PROBLEM_422, **PROBLEM_503},
)

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
PROBLEM_404: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown id"}}
ReportPeriod = Literal["day", "week"]
_NAME = r"^[A-Za-z0-9_.:\- ]+$"


class SubscriptionIn(BaseModel):
    """A subscription to the fleet report by e-mail."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=254, examples=["me@plant.example"])
    period: ReportPeriod = "day"
    format: Literal["pdf", "xlsx", "both"] = "pdf"
    unit: str | None = Field(default=None, max_length=128, pattern=_NAME, examples=["U100"])
    area: str | None = Field(default=None, max_length=128, pattern=_NAME)


class SubscriptionOut(SubscriptionIn):
    model_config = ConfigDict(extra="ignore", from_attributes=True)

    id: int
    username: str
    enabled: bool
    created_at: datetime | None
    last_sent_at: datetime | None = None


SubscriptionIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="Subscription id")]


def _out(row: ReportSubscription, last_sent: dict[int, datetime]) -> SubscriptionOut:
    answer = SubscriptionOut.model_validate(row)
    answer.last_sent_at = last_sent.get(row.id)
    return answer


@router.get(
    "/fleet",
    summary="The fleet report over the last day or week (PDF or XLSX download)",
    response_class=Response,
    responses={
        200: {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in MEDIA_TYPES.values()
            },
            "description": "The report as an attachment (Content-Disposition)",
        }
    },
)
async def fleet_report(
    resources: ResourcesDep,
    session: SessionDep,
    period: Annotated[
        ReportPeriod, Query(description="day: the last ASSESS_DAY_H; week: the last ASSESS_WEEK_D")
    ] = "day",
    report_format: Annotated[Literal["pdf", "xlsx"], Query(alias="format")] = "pdf",
    unit: UnitQuery = None,
    area: AreaQuery = None,
) -> Response:
    """Bad actors over the period with the change against the previous period, status
    changes, findings, fleet KPI means and trend, and work items opened, closed and open.
    The PDF lists the worst REPORT_PDF_TOP loops; the XLSX lists every loop."""
    settings = resources.settings
    length = settings.kpi.period_length(period)
    report = await gather_fleet_report(
        session, period, length, datetime.now(UTC), unit=unit, area=area
    )
    if report_format == "pdf":
        body = await asyncio.to_thread(render_pdf, report, settings.reports.report_pdf_top)
    else:
        body = await asyncio.to_thread(render_xlsx, report)
    return Response(
        content=body,
        media_type=MEDIA_TYPES[report_format],
        headers={
            "Content-Disposition": f'attachment; filename="{report.file_name(report_format)}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/subscriptions", summary="The caller's report subscriptions (engineer)")
async def list_subscriptions(
    session: SessionDep, principal: EngineerPrincipal
) -> list[SubscriptionOut]:
    rows = await ReportSubscriptionRepository(session).of_user(principal.username)
    last_sent = await ReportDeliveryRepository(session).last_sent([row.id for row in rows])
    return [_out(row, last_sent) for row in rows]


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe the caller to the daily or weekly report by e-mail (engineer)",
)
async def create_subscription(
    body: SubscriptionIn, session: SessionDep, principal: EngineerPrincipal
) -> SubscriptionOut:
    async with session.begin():
        row = await ReportSubscriptionRepository(session).create(
            principal.username, body.model_dump()
        )
        return _out(row, {})


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=PROBLEM_404,
    summary="Remove one of the caller's subscriptions (engineer)",
)
async def delete_subscription(
    subscription_id: SubscriptionIdPath, session: SessionDep, principal: EngineerPrincipal
) -> Response:
    async with session.begin():
        deleted = await ReportSubscriptionRepository(session).delete(
            principal.username, subscription_id
        )
    if not deleted:
        raise ProblemError(
            404,
            f"subscription {subscription_id} does not exist",
            type_=TYPE_NOT_FOUND,
            title="Subscription not found",
            extensions={"id": subscription_id},
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
