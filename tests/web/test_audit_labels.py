"""The audit log's actions and subject types in words: every action the source records has its words (a new
action without them fails here), and the audit viewer shows them in Chinese and English with the code beside."""

import ast
import re
import typing
from pathlib import Path

from app.cer import service as cer_service
from app.cer.schemas import FilingIn
from app.core import audit, db
from app.methodologies import service as methodologies_service
from app.organizations.schemas import OrgDecision
from app.scenes import service as scenes_service
from app.web import i18n
from app.web.audit_labels import ACTIONS, SUBJECT_TYPES, audit_action, audit_subject
from tests.factories import unique
from tests.web.helpers import HTML, make_authority_account, sign_in

APP = Path(__file__).resolve().parents[2] / "app"


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    """The calls of ``name(...)`` (a module's own helper) in a parsed module."""
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name
    ]


def _literal_args(path: str, helper: str, position: int) -> list[str]:
    """The string passed at ``position`` to every call of a module's audit helper."""
    tree = ast.parse((APP / path).read_text())
    args = [call.args[position] for call in _calls(tree, helper)]
    assert args and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args), path
    return [a.value for a in args]  # type: ignore[attr-defined]


def _methodology_actions() -> set[str]:
    tree = ast.parse((APP / "methodologies/service.py").read_text())
    kinds = {
        "METHODOLOGY": [methodologies_service.METHODOLOGY.subject],
        "EXCHANGE_RULE": [methodologies_service.EXCHANGE_RULE.subject],
        "kind": [methodologies_service.METHODOLOGY.subject, methodologies_service.EXCHANGE_RULE.subject],
    }
    actions = set()
    for call in _calls(tree, "_audit"):
        kind, verb = call.args[2], call.args[3]
        assert isinstance(kind, ast.Name) and isinstance(verb, ast.Constant), ast.unparse(call)
        actions |= {f"{subject}.{verb.value!s}" for subject in kinds[kind.id]}
    return actions


# The actions written with an f-string, by its source, and every value it takes. A new f-string action fails
# the test until it is listed here (and its values have words).
EXPANDED: dict[str, typing.Callable[[], set[str]]] = {
    "f'cer.project_{outcome}'": lambda: {
        f"cer.project_{o}" for o in typing.get_args(FilingIn.model_fields["outcome"].annotation)
    },
    "f'organization.{decision}'": lambda: {f"organization.{d}" for d in OrgDecision},
    "f'scene.{action}'": lambda: {f"scene.{a}" for a in scenes_service.TRANSITIONS},
    # the panel's conclusion on an application, and on a change to an approved scene
    "f'scene.{scene.status}'": lambda: {"scene.approved", "scene.rejected"},
    "f'scene.change_{change.status}'": lambda: {"scene.change_approved", "scene.change_rejected"},
    "f'{kind.subject}.{verb}'": _methodology_actions,
    "f'webhook.{action}'": lambda: {
        f"webhook.{a}" for a in _literal_args("webhooks/service.py", "_audit", 1)
    },
}
SUBJECTS = {  # subject types given by a name rather than a literal
    "SUBJECT_TYPE": {cer_service.SUBJECT_TYPE},
    "projects.SUBJECT_TYPE": {cer_service.SUBJECT_TYPE},
    "kind.subject": {methodologies_service.METHODOLOGY.subject, methodologies_service.EXCHANGE_RULE.subject},
}


def _recorded() -> tuple[set[str], set[str]]:
    """Every action and subject type the source passes to ``audit.record``."""
    actions: set[str] = set()
    subjects: set[str] = set()
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            action, subject = keywords["action"], keywords["subject_type"]
            for value in [action.body, action.orelse] if isinstance(action, ast.IfExp) else [action]:
                if isinstance(value, ast.Constant):
                    actions.add(str(value.value))
                else:
                    source = ast.unparse(value)
                    assert source in EXPANDED, (
                        f"{path}:{node.lineno}: list the values of {source} in EXPANDED"
                    )
                    actions |= EXPANDED[source]()
            if isinstance(subject, ast.Constant):
                subjects.add(str(subject.value))
            else:
                source = ast.unparse(subject)
                assert source in SUBJECTS, f"{path}:{node.lineno}: list the values of {source} in SUBJECTS"
                subjects |= SUBJECTS[source]
    return actions, subjects


class TestTable:
    def test_every_recorded_action_and_subject_type_has_words_and_no_other(self):
        actions, subjects = _recorded()
        assert len(actions) > 80
        assert sorted(actions - ACTIONS.keys()) == []
        assert sorted(ACTIONS.keys() - actions) == []
        assert sorted(subjects - SUBJECT_TYPES.keys()) == []
        assert sorted(SUBJECT_TYPES.keys() - subjects) == []

    def test_words_with_the_code_beside_them_and_an_unknown_code_alone(self):
        token = i18n.use(i18n.language_for("zh-CN"))
        try:
            assert audit_action("scene.suspend") == (
                '<span class="audit-label">场景已暂停 <small><code class="action-code">scene.<wbr>suspend</code>'
                "</small></span>"
            )
            assert audit_subject("mall_order") == (
                '<span class="audit-label">商城订单 <small><code class="subject-code">mall_order</code></small></span>'
            )
        finally:
            i18n.reset(token)
        assert audit_action("test.<b>") == "<code>test.&lt;b&gt;</code>"
        assert audit_subject("viewer_test") == "<code>viewer_test</code>"
        assert audit_action(None) == audit_subject("") == ""


LABEL = re.compile(r'<td data-label="[^"]+">(<span class="audit-label">.*?</span>)')


class TestViewer:
    async def test_the_log_and_an_entry_read_in_chinese_and_english(self, browser_client):
        actor, project, org = unique("authority:labels-test"), unique("project"), unique("org")
        for action, subject_type, subject_id in (
            ("cer.issued", "cer_project", project),
            ("organization.reinstate", "organization", org),
        ):
            async with db.session_scope() as session:
                audit.record(
                    session, actor=actor, action=action, subject_type=subject_type, subject_id=subject_id
                )
        assert (await sign_in(browser_client, await make_authority_account())).status_code == 303

        r = await browser_client.get("/console/audit", params={"actor": actor}, headers=HTML)
        assert r.status_code == 200
        assert LABEL.findall(r.text) == [
            '<span class="audit-label">机构已恢复 <small><code class="action-code">organization.<wbr>reinstate</code>'
            "</small></span>",
            '<span class="audit-label">机构 <small><code class="subject-code">organization</code></small></span>',
            '<span class="audit-label">核证减排量已签发 <small><code class="action-code">cer.<wbr>issued</code>'
            "</small></span>",
            '<span class="audit-label">核证减排量项目 <small><code class="subject-code">cer_project</code>'
            "</small></span>",
        ]

        browser_client.cookies.set("lang", "en")
        r = await browser_client.get(
            "/console/audit", params={"actor": actor, "action": "cer."}, headers=HTML
        )
        assert LABEL.findall(r.text) == [
            '<span class="audit-label">CER issued <small><code class="action-code">cer.<wbr>issued</code>'
            "</small></span>",
            '<span class="audit-label">CER project <small><code class="subject-code">cer_project</code>'
            "</small></span>",
        ]
        entry = re.search(r'<a href="(/console/audit/\d+/\d+)">', r.text).group(1)
        r = await browser_client.get(entry, headers=HTML)
        assert (
            '<dt>Action</dt><dd><span class="audit-label">CER issued <small><code class="action-code">'
            "cer.<wbr>issued</code></small></span></dd>"
        ) in r.text
