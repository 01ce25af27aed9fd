"""Review before publish: who may do what to a plan, and where.

Roles
-----
From least to most, each including those below it (:data:`ROLES`):

- ``anonymous``: the public layers and aggregate figures;
- ``viewer`` (leadership): also events and address-level layers;
- ``planner``: creates, edits, saves and submits plans, and withdraws them;
- ``reviewer``: approves or returns submitted plans (a return needs a
  comment), and publishes approved ones;
- ``admin``: everything, everywhere (keys, rollback).

Scopes
------
A planner's or reviewer's key may name the units it covers (a town, several
villages): its *scopes*. A unit is in scope when it, or one of its ancestors,
is one of them; codes are hierarchical, so a unit's ancestors are the prefixes
its code scheme gives (:meth:`gridgeo.schema.CodeScheme.chain`), and the
county's root code covers the whole city. A key without scopes covers the
whole city, and so does every admin. A plan is in scope when its parent (the
unit it redraws the inside of) is; a plan of the whole city (parent ``""``)
only for keys that cover the whole city.

The review
----------
A plan goes ``draft`` → ``submitted`` → ``approved`` → ``published``
(:data:`ACTIONS` says who takes each step, from which status):

==========  ========  =========================  ==============================
action      role      from                       to
==========  ========  =========================  ==============================
create      planner   —                          draft
edit        planner   any (nothing is stored)    —
save        planner   draft                      draft
submit      planner   draft                      submitted
withdraw    planner   submitted, approved        draft (its author, to change it)
return      reviewer  submitted, approved        draft, with the comment
approve     reviewer  submitted                  approved
publish     reviewer  approved                   published
==========  ========  =========================  ==============================

A plan under review is not saved: its author withdraws it to draft first (an
explicit step, so that a reviewer never approves a plan that changes under
them). A reviewer does not approve a plan they submitted themselves (four
eyes); an admin may. A small office that has no second person sets
``self_publish``: then a planner publishes a plan they created (draft,
submitted or approved) themselves, and a reviewer may approve their own.

Approving and publishing need the pre-publish report
(:func:`gridgeo.plan.report`): a report with errors refuses both
(:class:`ReportHasErrors`); a report with warnings must be acknowledged by
naming its version (:func:`require_acknowledged`), so that nobody publishes
warnings they were not shown.

Examples
--------
>>> from gridgeo.schema import DEFAULT_SCHEME
>>> from types import SimpleNamespace as Who
>>> wang = Who(name="王规划", role="planner", scopes=("350582106",))
>>> covers(wang.scopes, "350582106201", DEFAULT_SCHEME), covers(wang.scopes, "350582107201", DEFAULT_SCHEME)
(True, False)
>>> plan = {"status": "draft", "parent": "350582107201", "author": "李规划"}
>>> check(wang, "save", plan, scheme=DEFAULT_SCHEME)
Traceback (most recent call last):
...
gridgeo.review.AccessError: 王规划 may save plans only inside 350582106: plan of 350582107201 is outside
>>> allowed(wang, {**plan, "parent": "350582106201"}, scheme=DEFAULT_SCHEME)
['edit', 'save', 'submit']
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

__all__ = ["ROLES", "ACTIONS", "Rule", "AccessError", "ReportRefused", "ReportHasErrors",
           "AcknowledgementRequired", "has_role", "covers", "check", "allowed", "steps", "require_acknowledged"]

ROLES = ("anonymous", "viewer", "planner", "reviewer", "admin")
"""The roles, from least to most; each includes every role before it."""

ROLES_ZH = {"anonymous": "公众", "viewer": "领导", "planner": "规划员", "reviewer": "审核员", "admin": "管理员"}


class Rule(NamedTuple):
    """Who may take a step, from where, to where."""

    role: str
    """The role it needs."""
    statuses: tuple | None
    """The statuses the plan may be in (None: any)."""
    to: str | None
    """The plan's status after it (None: unchanged)."""


ACTIONS = {
    "create": Rule("planner", None, "draft"),
    "edit": Rule("planner", None, None),
    "save": Rule("planner", ("draft",), "draft"),
    "submit": Rule("planner", ("draft",), "submitted"),
    "withdraw": Rule("planner", ("submitted", "approved"), "draft"),
    "return": Rule("reviewer", ("submitted", "approved"), "draft"),
    "approve": Rule("reviewer", ("submitted",), "approved"),
    "publish": Rule("reviewer", ("approved",), "published"),
}
"""action -> :class:`Rule`: the role it needs, the statuses it starts from, the status it leaves."""

_SELF_PUBLISH_FROM = ("draft", "submitted", "approved")

_DOING_ZH = {"create": "新建", "edit": "编辑", "save": "保存", "submit": "提交审核", "withdraw": "撤回",
             "return": "退回", "approve": "审核通过", "publish": "发布"}
_STATUS_ZH = {"draft": "草稿", "submitted": "待审核", "approved": "已审核", "published": "已发布",
              "abandoned": "已作废"}


class AccessError(PermissionError):
    """A step the caller's role or scope does not allow; nothing was changed.

    Attributes
    ----------
    reason : str
        ``"role"`` (the step needs a higher role), ``"scope"`` (the plan's
        unit is outside the caller's scopes), ``"own_plan"`` (a reviewer
        approving their own submission) or ``"not_author"`` (withdrawing
        someone else's plan).
    message_en, message_zh : str
    codes : list of str
        The unit at fault, then the caller's scopes.
    """

    def __init__(self, reason: str, message_en: str, message_zh: str, *, codes=()):
        super().__init__(message_en)
        self.reason, self.message_en, self.message_zh = reason, message_en, message_zh
        self.codes = [str(c) for c in codes]

    def to_dict(self) -> dict:
        return {"reason": self.reason, "message_en": self.message_en, "message_zh": self.message_zh,
                "codes": self.codes}


class ReportRefused(Exception):
    """An approval or publish refused because of its pre-publish report (``report``)."""

    reason = "report"

    def __init__(self, report, message_en: str, message_zh: str):
        super().__init__(message_en)
        self.report, self.message_en, self.message_zh = report, message_en, message_zh

    def to_dict(self) -> dict:
        body = self.report.to_dict()
        return {"reason": self.reason, "message_en": self.message_en, "message_zh": self.message_zh,
                "report": body, "errors": body["errors"]}


class ReportHasErrors(ReportRefused):
    """The plan fails validation: it can be neither approved nor published."""

    reason = "report_errors"


class AcknowledgementRequired(ReportRefused):
    """The report has warnings and the caller did not acknowledge this version of it."""

    reason = "acknowledgement_required"


def has_role(role: str, needed: str) -> bool:
    """Whether ``role`` includes ``needed``.

    Examples
    --------
    >>> has_role("reviewer", "planner"), has_role("planner", "reviewer"), has_role("admin", "reviewer")
    (True, False, True)
    """
    return ROLES.index(role) >= ROLES.index(needed)


def covers(scopes, code: str, scheme) -> bool:
    """Whether keys with these ``scopes`` cover the unit ``code``: no scopes cover
    everything; else the code or one of its ancestors (by ``scheme``, a
    :class:`~gridgeo.schema.CodeScheme`; the county's root code included) must
    be a scope. ``""`` (the whole city) is covered only without scopes.

    Examples
    --------
    >>> from gridgeo.schema import DEFAULT_SCHEME
    >>> [covers(("350582106201", "350582107"), c, DEFAULT_SCHEME)
    ...  for c in ("3505821062010102", "350582106202", "350582107203", "350582106", "")]
    [True, False, True, False, False]
    >>> covers((), "", DEFAULT_SCHEME), covers(("350582",), "350582106201", DEFAULT_SCHEME)
    (True, True)
    """
    scopes = {str(s) for s in scopes or ()}
    if not scopes:
        return True
    code = str(code or "")
    if not code:
        return False
    try:
        ancestors = set(scheme.chain(code))
    except ValueError:  # no level has this code's width: only the scope itself covers it
        ancestors = {code}
    ancestors.add(code[:scheme.root_digits])
    return bool(ancestors & scopes)


def _scopes(who) -> tuple:
    return () if who.role == "admin" else tuple(getattr(who, "scopes", ()) or ())


def check(who, action: str, plan: Mapping | None = None, *, scheme, self_publish: bool = False,
          parent: str | None = None) -> None:
    """Refuse ``action`` on ``plan`` by ``who`` unless the rules above allow it.

    Parameters
    ----------
    who
        The caller: an object with ``name``, ``role`` and ``scopes``.
    action : str
        One of :data:`ACTIONS`.
    plan : mapping, optional
        The plan: ``status``, ``parent``, ``author`` and, for an approval,
        ``submitted_by`` (see :func:`steps`). None for ``create``.
    scheme : CodeScheme
    self_publish : bool, default False
        The small office's setting (see above).
    parent : str, optional
        For ``create``: the unit the new plan redraws.

    Raises
    ------
    AccessError
        The role or the scope does not allow it (HTTP 403).
    gridgeo.store.PlanStateError
        The plan is not in a status the action starts from (HTTP 409).
    """
    rule = ACTIONS.get(action)
    if rule is None:
        raise ValueError(f"no action {action!r}: use one of {list(ACTIONS)}")
    plan = dict(plan or {})
    unit = str((parent if action == "create" else plan.get("parent")) or "")
    own = bool(plan) and plan.get("author") == who.name
    publishing_own = action == "publish" and self_publish and own and plan.get("status") in _SELF_PUBLISH_FROM
    needed = "planner" if publishing_own else rule.role
    if not has_role(who.role, needed):
        raise AccessError(
            "role", f"{who.name} ({who.role}) may not {action} plans: that needs the {needed} role",
            f"{who.name}（{ROLES_ZH.get(who.role, who.role)}）无权{_DOING_ZH[action]}方案：需要{ROLES_ZH[needed]}角色",
            codes=[unit])
    scopes = _scopes(who)
    if not covers(scopes, unit, scheme):
        shown = ", ".join(scopes)
        what = f"plan of {unit}" if unit else "a plan of the whole city"
        what_zh = f"{unit} 的方案" if unit else "全域方案"
        raise AccessError(
            "scope", f"{who.name} may {action} plans only inside {shown}: {what} is outside",
            f"{who.name} 只能{_DOING_ZH[action]}{'、'.join(scopes)} 范围内的方案：{what_zh}不在其中",
            codes=[unit, *scopes])
    status = plan.get("status")
    allowed_from = _SELF_PUBLISH_FROM if publishing_own else rule.statuses
    if allowed_from is not None and plan and status not in allowed_from:
        from gridgeo.store.errors import PlanStateError

        advice, advice_zh = "", ""
        if status in ("submitted", "approved") and "draft" in allowed_from:
            advice, advice_zh = ": it is under review, and its author withdraws it to draft first", "；方案审核中，须由作者先撤回为草稿"
        elif status in ("published", "abandoned"):
            advice, advice_zh = ": start a new plan from the published grids", "；请基于现行网格新建方案"
        raise PlanStateError(
            f"cannot {action} plan {plan.get('plan_id', '')} ({plan.get('name', '')!r}): it is {status}; "
            f"{action} starts from a plan that is {' or '.join(allowed_from)}{advice}"
            f" ({_DOING_ZH[action]}须方案为{'或'.join(_STATUS_ZH.get(s, s) for s in allowed_from)}，"
            f"现为{_STATUS_ZH.get(status, status)}{advice_zh})")
    if action == "withdraw" and who.role != "admin" and who.name not in (plan.get("author"),
                                                                          plan.get("submitted_by")):
        raise AccessError(
            "not_author", f"only the plan's author ({plan.get('author')}) or who submitted it withdraws it; "
            f"{who.name} may not (a reviewer returns it, with a comment)",
            f"只有方案作者（{plan.get('author')}）或提交人可以撤回；{who.name} 不能撤回（审核员可退回并附意见）",
            codes=[unit])
    if action == "approve" and who.role != "admin" and not self_publish \
            and plan.get("submitted_by") == who.name:
        raise AccessError(
            "own_plan", f"{who.name} submitted this plan and may not approve it too: another reviewer approves it "
            "(a small office without one sets GRIDGEO_SELF_PUBLISH)",
            f"{who.name} 提交了该方案，不能再由本人审核通过：请另一位审核员审核（没有其他审核员的小型网格办可开启 "
            "GRIDGEO_SELF_PUBLISH）", codes=[unit])


def allowed(who, plan: Mapping, *, scheme, self_publish: bool = False) -> list[str]:
    """The actions ``who`` may take on ``plan`` now (for a page's buttons), in :data:`ACTIONS` order.

    Examples
    --------
    >>> from gridgeo.schema import DEFAULT_SCHEME
    >>> from types import SimpleNamespace as Who
    >>> plan = {"status": "submitted", "parent": "350582106201", "author": "张三", "submitted_by": "张三"}
    >>> allowed(Who(name="李审核", role="reviewer", scopes=()), plan, scheme=DEFAULT_SCHEME)
    ['edit', 'return', 'approve']
    >>> allowed(Who(name="张三", role="planner", scopes=()), plan, scheme=DEFAULT_SCHEME, self_publish=True)
    ['edit', 'withdraw', 'publish']
    """
    from gridgeo.store.errors import PlanStateError

    out = []
    for action in ACTIONS:
        if action == "create":
            continue
        try:
            check(who, action, plan, scheme=scheme, self_publish=self_publish)
        except (AccessError, PlanStateError):
            continue
        out.append(action)
    return out


def steps(history) -> dict:
    """The review so far, from a plan's log (:meth:`gridgeo.store.Plan.history`): who
    ``submitted_by`` the plan last and when (``submitted_at``), the last return
    (``returned_by``, ``returned_at``, ``comment``: the reviewer's comment, while
    the plan has not been submitted again) and the approval (``approved_by``,
    ``approved_at``) of the current submission.

    Examples
    --------
    >>> import pandas as pd
    >>> log = pd.DataFrame({"action": ["create", "submit", "return", "save"],
    ...                     "author": ["张三", "张三", "李审核", "张三"], "message": ["", "", "请合并北边网格", ""],
    ...                     "at": pd.to_datetime(["2025-03-01"] * 4, utc=True)})
    >>> steps(log)["comment"], steps(log)["submitted_by"]
    ('请合并北边网格', None)
    """
    out = dict.fromkeys(["submitted_by", "submitted_at", "returned_by", "returned_at", "comment",
                         "approved_by", "approved_at"])
    for row in history.to_dict("records"):
        action, at = row["action"], _when(row["at"])
        if action == "submit":
            out.update(submitted_by=row["author"], submitted_at=at, approved_by=None, approved_at=None,
                       returned_by=None, returned_at=None, comment=None)
        elif action == "return":
            out.update(returned_by=row["author"], returned_at=at, comment=row["message"], submitted_by=None,
                       submitted_at=None, approved_by=None, approved_at=None)
        elif action == "withdraw":
            out.update(submitted_by=None, submitted_at=None, approved_by=None, approved_at=None)
        elif action == "approve":
            out.update(approved_by=row["author"], approved_at=at)
    return out


def _when(value):
    if value is None:
        return None
    stamp = getattr(value, "strftime", None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp else str(value)


def require_acknowledged(report, acknowledge: str | None, *, doing: str = "publish") -> None:
    """Refuse ``doing`` (approve or publish) unless ``report`` allows it.

    A report with errors refuses it whatever is acknowledged
    (:class:`ReportHasErrors`); a report with warnings needs ``acknowledge``
    to be its ``version`` (:class:`AcknowledgementRequired`, carrying the
    report, whose version the caller then shows and acknowledges). A report
    without warnings needs nothing.

    Examples
    --------
    >>> from types import SimpleNamespace as Report
    >>> r = Report(errors=[], warnings=[{"kind": "off_band"}], version="9f2c", plan_id=1)
    >>> require_acknowledged(r, "9f2c")
    >>> require_acknowledged(r, None)
    Traceback (most recent call last):
    ...
    gridgeo.review.AcknowledgementRequired: plan 1 has 1 warning(s) in its pre-publish report (version 9f2c): ...
    """
    errors, warnings = len(report.errors), len(report.warnings)
    doing_zh = _DOING_ZH.get(doing, doing)
    if errors:
        raise ReportHasErrors(
            report, f"plan {report.plan_id} cannot be {doing}d: its pre-publish report has {errors} validation "
            "error(s). Return it to draft and fix them",
            f"方案 {report.plan_id} 不能{doing_zh}：发布前报告中有 {errors} 个校验错误，请退回草稿修改")
    if warnings and acknowledge != report.version:
        stale = f" (the version acknowledged, {acknowledge}, is not this report's: the plan or the published " \
                "data changed since)" if acknowledge else ""
        stale_zh = f"（所确认的版本 {acknowledge} 已过期：方案或现行数据已变动）" if acknowledge else ""
        raise AcknowledgementRequired(
            report, f"plan {report.plan_id} has {warnings} warning(s) in its pre-publish report (version "
            f"{report.version}): read them and {doing} with acknowledge={report.version!r}{stale}",
            f"方案 {report.plan_id} 的发布前报告有 {warnings} 条警告（版本 {report.version}）：请阅读并确认后再"
            f"{doing_zh}{stale_zh}")
