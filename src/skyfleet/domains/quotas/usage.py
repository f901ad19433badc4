"""The usage report of one project: global sums and each site's last observation with its age.

Why it exists: reads come from Skyfleet's store, never from a fan-out to sites; this assembles the
store's rows into the answer of ``GET /v1/quotas/{project}/usage`` (and Kingbird's ``detail``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.quotas import service as quotas
from skyfleet.domains.quotas.models import QuotaProject, QuotaSiteCursor, QuotaSiteState
from skyfleet.domains.quotas.schemas import SiteUsage, UsageOut
from skyfleet.domains.sites.models import Site


def usage_report(session: Session, *, project_id: str) -> UsageOut:
    row = session.get(QuotaProject, project_id)
    limits = quotas.effective_limits(session, row)
    states = session.execute(select(QuotaSiteState, Site.name, Site.availability, QuotaSiteCursor.checked_at)
                             .join(Site, Site.id == QuotaSiteState.site_id)
                             .outerjoin(QuotaSiteCursor, QuotaSiteCursor.site_id == QuotaSiteState.site_id)
                             .where(QuotaSiteState.project_id == project_id).order_by(Site.name)).all()
    sites = [SiteUsage(site_id=s.site_id, site_name=name, availability=avail,
                       remote_project_id=s.remote_project_id, usage=s.usage, limits=s.limits, applied=s.applied,
                       observed_at=quotas.freshness(s, checked), applied_at=s.applied_at, last_error=s.last_error)
             for s, name, avail, checked in states]
    total = {k: sum(int(s.usage.get(k, 0)) for s in sites) for k in limits}
    observed = [s.observed_at for s in sites if s.observed_at is not None]
    return UsageOut(project_id=project_id, mode=row.mode if row else "hard", limits=limits, usage=total,
                    over_limit=sorted(k for k, v in limits.items() if 0 <= v < total[k]),
                    oldest_observation=min(observed) if observed else None, sites=sites)
