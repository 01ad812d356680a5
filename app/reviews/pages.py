"""The experts' workspace: the panels I am on, my declaration of interests before I see a subject,
the subject's documents and my one opinion. Each page calls one function of
:mod:`app.reviews.service`, the same service the JSON routes call."""

import uuid
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.auth.dependencies import Session
from app.core.pagination import Cursor
from app.core.types import Text
from app.experts.pages import FIELD_NAMES
from app.reviews import service
from app.reviews.exceptions import (
    AlreadyDeclared,
    DeclarationRequired,
    OpinionAlreadySubmitted,
    PanelClosed,
)
from app.scenes.pages import DISTRICTS, behaviour_label, category_label, opening_hours_text
from app.web.dependencies import page_router, require_viewer
from app.web.i18n import N_, gettext
from app.web.sessions import Viewer
from app.web.templating import render

router = page_router(prefix="/expert")
ExpertViewer = Annotated[Viewer, Depends(require_viewer("expert"))]

SUBJECT_TYPES = {
    "scene": N_("Scene application"),
    "scene_change": N_("Change to an approved scene"),
    "cer_project": N_("CER project"),
    "methodology_version": N_("Methodology version"),
}
SUBJECT_OWNERS = {  # who stands behind the subject, named as the regulations name them
    "scene": N_("Applicant"),
    "scene_change": N_("Scene operator"),
    "cer_project": N_("Project owner"),
    "methodology_version": N_("Drafted by"),
}
VERDICTS = (("pass", N_("Pass")), ("fail", N_("Fail")))
MIN_REASONING, MAX_REASONING = 20, 20000
NOTE_MAX = 2000


def subject_type_label(code: str) -> str:
    return gettext(SUBJECT_TYPES[code]) if code in SUBJECT_TYPES else code


def owner_label(code: str) -> str:
    """What the subject's owner is called for this kind of subject (a scene's applicant, a project's owner…)."""
    return gettext(SUBJECT_OWNERS.get(code, N_("Owner")))


def field_label(code: str) -> str:
    return gettext(FIELD_NAMES[code]) if code in FIELD_NAMES else code


def verdict_label(code: str | None) -> str:
    return next((gettext(label) for value, label in VERDICTS if value == code), code or "")


def _labels() -> dict[str, Any]:
    """The label functions every template of the workspace uses."""
    return {
        "subject_type_label": subject_type_label,
        "owner_label": owner_label,
        "field_label": field_label,
        "verdict_label": verdict_label,
    }


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _blocked(request: Request, view: service.ExpertPanel, reason: str, status_code: int = 409) -> Response:
    """Why this page cannot be used now (declaration missing, conflict declared, panel decided…)."""
    return render(
        request,
        "reviews/blocked.html",
        {"view": view, "reason": reason, **_labels()},
        status_code=status_code,
    )


async def _panel_or_blocked(
    request: Request, session: Session, viewer: Viewer, panel_id: uuid.UUID
) -> service.ExpertPanel | Response:
    """The panel with its subject's documents, or the page saying what to do first."""
    try:
        return await service.expert_panel(session, viewer.principal, panel_id, documents=True)
    except DeclarationRequired as exc:
        view = await service.expert_panel(session, viewer.principal, panel_id, documents=False)
        return _blocked(request, view, "conflict" if exc.code == "conflict_declared" else "declare")


@router.get("", name="expert_home")
async def home(request: Request, session: Session, viewer: ExpertViewer, cursor: Cursor = None) -> Response:
    open_ = await service.expert_panels(session, viewer.principal, status="open", limit=100, cursor=None)
    decided = await service.expert_panels(
        session, viewer.principal, status="decided", limit=20, cursor=cursor
    )
    return render(
        request,
        "reviews/home.html",
        {
            "open": open_.items,
            "decided": decided.items,
            "next_cursor": decided.next_cursor,
            "first_page": cursor is None,
            **_labels(),
        },
    )


@router.get("/panels/{panel_id}/declaration", name="expert_declaration")
async def declaration_form(
    request: Request, session: Session, viewer: ExpertViewer, panel_id: uuid.UUID
) -> Response:
    view = await service.expert_panel(session, viewer.principal, panel_id, documents=False)
    if view.declared and not view.conflict:
        return _see_other(f"/expert/panels/{panel_id}")
    return render(
        request,
        "reviews/declaration.html",
        {"view": view, "form": {"confirm": False, "note": ""}, "errors": {}, **_labels()},
    )


@router.post("/panels/{panel_id}/declaration")
async def declare(
    request: Request,
    session: Session,
    viewer: ExpertViewer,
    panel_id: uuid.UUID,
    answer: Annotated[Text, Form(max_length=20)] = "",
    confirm: Annotated[Text, Form(max_length=10)] = "",
    note: Annotated[Text, Form(max_length=NOTE_MAX * 2)] = "",
) -> Response:
    view = await service.expert_panel(session, viewer.principal, panel_id, documents=False)
    errors: dict[str, str] = {}
    if answer not in (service.NO_CONFLICT, service.CONFLICT):
        errors["confirm"] = gettext("Choose one of the two answers below.")
    elif answer == service.NO_CONFLICT and confirm != "yes":
        errors["confirm"] = gettext("Tick the box to make the declaration, or declare a conflict instead.")
    if len(note.strip()) > NOTE_MAX:
        errors["note"] = gettext("At most 2,000 characters.")
    if not errors:
        try:
            await service.declare(
                session, viewer.principal, panel_id, conflict=answer == service.CONFLICT, note=note
            )
        except AlreadyDeclared:
            return _see_other(f"/expert/panels/{panel_id}/declaration")
        except PanelClosed:
            return _blocked(request, view, "closed")
        if answer == service.CONFLICT:
            return _see_other(f"/expert/panels/{panel_id}/declaration")
        return _see_other(f"/expert/panels/{panel_id}")
    form = {"confirm": confirm == "yes", "note": note}
    return render(
        request,
        "reviews/declaration.html",
        {"view": view, "form": form, "errors": errors, **_labels()},
        status_code=400,
    )


def _documents(view: service.ExpertPanel) -> dict[str, Any]:
    """What the subject's template shows beyond its read model: labels of codes."""
    docs = view.subject.documents
    if view.subject.type in ("scene", "scene_change") and docs is not None:
        return {
            "category": category_label(docs.category),
            "behaviours": [behaviour_label(b) for b in docs.behaviour_types],
            "opening_hours": opening_hours_text(docs.opening_hours),
            "district": next((gettext(name) for code, name in DISTRICTS if code == docs.district_code), None),
        }
    if view.subject.type == "cer_project" and docs is not None:
        return {"behaviour_label": behaviour_label}
    return {}


@router.get("/panels/{panel_id}", name="expert_panel")
async def panel(request: Request, session: Session, viewer: ExpertViewer, panel_id: uuid.UUID) -> Response:
    view = await _panel_or_blocked(request, session, viewer, panel_id)
    if isinstance(view, Response):
        return view
    return render(
        request,
        "reviews/panel.html",
        {"view": view, "docs": _documents(view), "given": "given" in request.query_params, **_labels()},
    )


def _opinion_context(view: service.ExpertPanel, form: dict[str, str], errors: dict[str, str]) -> dict:
    return {
        "view": view,
        "form": form,
        "errors": errors,
        "verdicts": [(value, gettext(label)) for value, label in VERDICTS],
        "min_reasoning": MIN_REASONING,
        "confirming": False,
        **_labels(),
    }


@router.get("/panels/{panel_id}/opinion", name="expert_opinion")
async def opinion_form(
    request: Request, session: Session, viewer: ExpertViewer, panel_id: uuid.UUID
) -> Response:
    view = await _panel_or_blocked(request, session, viewer, panel_id)
    if isinstance(view, Response):
        return view
    if view.me.submitted or view.panel.status != "open":
        return _see_other(f"/expert/panels/{panel_id}")
    form = {"verdict": "", "score": "", "reasoning": ""}
    return render(request, "reviews/opinion.html", _opinion_context(view, form, {}))


def _check_opinion(verdict: str, score: str, reasoning: str) -> tuple[dict[str, str], int | None]:
    errors: dict[str, str] = {}
    if verdict not in ("pass", "fail"):
        errors["verdict"] = gettext("Choose your verdict: pass or fail.")
    number = None
    text = score.strip()
    if text.isdigit() and int(text) <= 100:
        number = int(text)
    else:
        errors["score"] = gettext("Enter a whole number from 0 to 100.")
    length = len(reasoning.strip())
    if length < MIN_REASONING:
        errors["reasoning"] = gettext("Give your reasons in at least %(n)s characters.") % {
            "n": MIN_REASONING
        }
    elif length > MAX_REASONING:
        errors["reasoning"] = gettext("At most 20,000 characters.")
    return errors, number


@router.post("/panels/{panel_id}/opinion")
async def give_opinion(
    request: Request,
    session: Session,
    viewer: ExpertViewer,
    panel_id: uuid.UUID,
    verdict: Annotated[Text, Form(max_length=10)] = "",
    score: Annotated[Text, Form(max_length=20)] = "",
    reasoning: Annotated[Text, Form(max_length=MAX_REASONING * 2)] = "",
    step: Annotated[Text, Form(max_length=10)] = "",
) -> Response:
    view = await _panel_or_blocked(request, session, viewer, panel_id)
    if isinstance(view, Response):
        return view
    form = {"verdict": verdict, "score": score.strip(), "reasoning": reasoning.strip()}
    errors, number = _check_opinion(verdict, score, reasoning)
    if errors or number is None or step == "edit":
        status_code = 400 if errors else 200
        return render(
            request, "reviews/opinion.html", _opinion_context(view, form, errors), status_code=status_code
        )
    if step != "send":  # the first step: show what will be sent, to confirm
        return render(
            request, "reviews/opinion.html", {**_opinion_context(view, form, {}), "confirming": True}
        )
    try:
        await service.submit_opinion(
            session, viewer.principal, panel_id, verdict=verdict, score=number, text=form["reasoning"]
        )
    except OpinionAlreadySubmitted:
        return _blocked(request, view, "given")
    except PanelClosed:
        return _blocked(request, view, "closed")
    return _see_other(f"/expert/panels/{panel_id}?given=1")
