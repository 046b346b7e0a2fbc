"""A seeded demo B2B SaaS company with known ground truth.

:func:`demo_company` builds "Acme RevOps" (www.acme-revops.com), a company that sells
revenue-attribution software to SMB, Mid-Market and Enterprise accounts, and creates
its canonical tables (``events``, ``leads``, ``activities``, ``opportunities``,
``stage_history``, ``subscriptions``, ``spend``, ``fx_rates``) in an Ibis backend.
:func:`generate` does the same without a backend and returns pyarrow tables.
Identity stitching is not done here: the events carry what a stitcher needs
(``anonymous_id``, ``email_hash`` on ``form_submit`` and ``identify``, click ids).
Everything is vectorised numpy: one million people take 15-30 s on two cores.

The company (defaults: 20,000 people, 24 months ending 2026-10-31)
-------------------------------------------------------------------
**People and accounts.** People belong to accounts (about six per account, log-normal
sizes; Enterprise accounts three times larger). 96 % are web visitors, 2.5 % outbound
prospects ("spears": leads with no web history) and 1.2 % partner referrals ("nets").
Arrivals grow 3 % a month, with fewer at weekends and a Europe + US working-day hour
profile. 30 % of visitors use a second device (its own ``anonymous_id``).

**Sessions.** A visitor has a geometric number of sessions (mean 3, at most 30), days to
weeks apart (log-normal gaps, median 5 days), each of 1-15 page views about a minute
apart, so a 30-minute rule rebuilds the tag's ``session_id``. A session's true channel is
drawn from a first-session mix, a repeat-session mix, or, after the lead, a post-lead mix
(more Email and Direct). Each channel arrives through realistic variants that the GA4
default channel group rules classify to it: Organic Search (google/bing referrers, no
UTM), Paid Search (google/bing cpc with gclid/msclkid, brand and non-brand campaigns),
Paid Social (linkedin/facebook ``paid_social`` with li_fat_id/fbclid), Organic Social
(linkedin.com, t.co, reddit), Email (``newsletter``/``email``), Referral (g2, capterra,
partner blogs), Direct (no referrer, plus self-referrals from the app and the site),
Display (``display``), Paid Video (youtube ``cpv``), Affiliates (``affiliate``), Organic
Video (youtube/vimeo referrers), Cross-network (campaigns named ``*cross-network*``) and
Unassigned (``partner_x``/``webinar`` and other untagged oddities). UTM tags and the click
id are on the landing page view only; later page views have the previous page as referrer.

**The true lead conversion** (noisy-OR with carry-over). Session ``k`` of person ``i``
turns the person into a lead (a ``form_submit``) with probability::

    h_ik = min(0.9, intent_i * (1 - (1 - b) * prod_{j <= k} (1 - lift_{c_j} * m_j * exp(-(t_k - t_j) / 21 days))))

where ``lift_c`` is the channel's true lift (``GroundTruth.channel_lift``), ``b = 0.01`` a
baseline, ``m_j = 1.5`` for the person's first session (position effect) and 1 otherwise,
and ``intent_i`` a log-normal propensity (lower for larger segments). The first session
that fires is the lead; each earlier session's true credit is its ``-log(1 - lift * decay)``
share. About 9 % of visitors become leads. Some leads come back on their other device and
identify (an ``identify`` event with the e-mail hash), or click newsletters.

**Leads.** ``source`` is what the CRM records: ``"Inbound - <channel of the converting
session>"`` (8 % lose the detail: ``"Inbound - Web"``), ``"Outbound"`` or ``"Partner"``.
``click_id`` is the converting session's click id. SDRs own leads.

**Speed to lead.** 16 % of inbound, 4 % of outbound and 10 % of partner leads are never
contacted. The others are first touched after a log-normal number of *business* minutes
(median 45, sigma 2; business hours 14:00-22:00 UTC, Mon-Fri, fixed US holidays) times the
SDR's own speed factor; 12 % are answered off-hours on the wall clock, outbound leads within
minutes. Follow-up attempts (calls, e-mails, LinkedIn) are geometric (mean 3.3) with growing
gaps; fast first calls connect more often.

**Lead -> opportunity.** A proportional-hazards model over lead age: a piecewise-constant
daily baseline hazard (knots 0, 7, 30, 90, 180, 365 days; none after a year) times
``exp(log HR)`` with terms for the source (outbound -0.9, partner +0.7), segment, the
first-response bucket (hazard ratios 2.2 for <= 5 min, 1.6 for 5-60 min, 1 for 1-24 h,
0.55 for > 24 h, 0.25 never contacted), intent and a log-normal lead quality. About 13 %
of leads convert; a meeting activity precedes each opportunity.

**Pipeline.** Opportunities go Discovery -> Demo -> Proposal -> Negotiation -> Closed Won,
with competing latent times per stage: advance (a hazard of 1 per usual time in stage that
decays as ``exp(-(age - usual) / usual)`` beyond it), lose, and regress (Proposal and
Negotiation). Usual times scale by segment (x0.5 SMB, x1.8 Enterprise). Stages can be
skipped; amounts (log-normal by segment, median 12k/42k/140k, 75 % USD, 15 % EUR, 10 %
GBP) change at stage changes and get discounted in Negotiation; reps set optimistic close
dates and push them when they pass; forecast categories follow the stage. Win rate is
about 25 %. ``stage_history`` has one row per change (stage, amount, close date, forecast
category), pushes included.

**Subscriptions.** Won deals start a subscription within two weeks: annual (mostly larger
segments) or monthly (some quarterly: ``interval_count=3``), seats x price per seat per
interval (``amount`` is the list price per unit per interval, ``quantity`` the seats,
``discount`` the fraction taken off, 0.15 = 15 %). At each renewal a subscription may churn
(``cancelled_at`` before ``ends_at``, the end of the paid period), expand, contract, get a
price uplift or lose its first-year discount, or buy the forecasting add-on (a second
item); each change ends the row and starts a new one. 12 % of churned customers reactivate
with a new subscription. ``status`` is the subscription's status at the end of history
(``active``, ``canceled``, ``past_due``), repeated on every row of it.

**Spend and FX.** Daily spend per paid channel and campaign is that day's clicks x cost
per click (brand search cheap, non-brand dear) x noise, plus a cost for impressions that
brought no visit; won first-year ACV is about 14x total paid spend, and about 2x when only
leads whose converting session was paid count.
``fx_rates`` has daily USD, EUR and GBP rates to the reporting currency (random walks).

Every parameter is in :class:`GroundTruth` (``truth.to_dict()``).
"""

from __future__ import annotations

from revloop.synthetic._company import TABLE_NAMES as TABLE_NAMES
from revloop.synthetic._company import DemoCompany as DemoCompany
from revloop.synthetic._company import GroundTruth as GroundTruth
from revloop.synthetic._company import demo_company as demo_company
from revloop.synthetic._company import generate as generate

__all__ = ["TABLE_NAMES", "DemoCompany", "GroundTruth", "demo_company", "generate"]
